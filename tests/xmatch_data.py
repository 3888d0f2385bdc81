"""Shared data for the cross-match tests: the real catalogs imported once, and the astropy oracle."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from alertfeat.xmatch import Catalog, ensure_default_catalogs, load_catalog
from alertfeat.xmatch.store import catalogs_dir

MJD_J2000 = 51544.5


MAS = 1e-3  # arcsec


def assert_same_pairs(ours: dict, theirs: dict, what: str) -> None:
    """Our (alert, source) -> separation pairs equal astropy's, separations within 1 mas."""
    missing = sorted(set(theirs) - set(ours))[:5]
    extra = sorted(set(ours) - set(theirs))[:5]
    assert not missing and not extra, f"{what}: astropy-only {missing}, ours-only {extra}"
    worst = max((abs(ours[k] - theirs[k]) for k in ours), default=0.0)
    assert worst < MAS, f"{what}: separations differ by up to {worst * 1e3:.4f} mas"


def mjd_of_year(year: float) -> float:
    return MJD_J2000 + (year - 2000.0) * 365.25


@pytest.fixture(scope="session")
def real_data_dir(data_dir) -> Path:
    """The session's data directory, with gaia and hipparcos imported the way the service does on first use."""
    ensure_default_catalogs(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def gaia(real_data_dir) -> Catalog:
    return load_catalog(catalogs_dir(real_data_dir) / "gaia")


@pytest.fixture(scope="session")
def hipparcos(real_data_dir) -> Catalog:
    return load_catalog(catalogs_dir(real_data_dir) / "hipparcos")


def catalog_coords(c: Catalog, year: float | None = None):
    """The catalog's rows as an astropy SkyCoord, moved by astropy to `year` when it has proper motions."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    ra = np.asarray(c.ra) * u.deg
    dec = np.asarray(c.dec) * u.deg
    if not c.has_pm or year is None:
        return SkyCoord(ra=ra, dec=dec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA: "distance overridden" (no parallax), "dubious year"
        moving = SkyCoord(ra=ra, dec=dec, pm_ra_cosdec=np.asarray(c.pmra, np.float64) * u.mas / u.yr,
                          pm_dec=np.asarray(c.pmdec, np.float64) * u.mas / u.yr, obstime=Time(c.epoch, format="jyear"))
        moved = moving.apply_space_motion(new_obstime=Time(year, format="jyear"))
    return SkyCoord(ra=moved.ra, dec=moved.dec)


def astropy_pairs(ra, dec, years, c: Catalog, radius_arcsec: float, mag_max: float | None = None) -> dict:
    """{(alert, row): separation in arcsec} from astropy search_around_sky, per epoch group."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    out = {}
    for year in np.unique(years):
        sel = np.flatnonzero(years == year)
        cat = catalog_coords(c, float(year))
        rows = np.arange(c.rows)
        if mag_max is not None:
            keep = np.asarray(c.mag) <= mag_max
            cat, rows = cat[keep], rows[keep]
        alerts = SkyCoord(ra=ra[sel] * u.deg, dec=dec[sel] * u.deg)
        ia, ic, sep, _ = search_around_sky(alerts, cat, radius_arcsec * u.arcsec)
        for a, k, s in zip(sel[ia].tolist(), rows[ic].tolist(), sep.to_value(u.arcsec).tolist()):
            out[(a, k)] = s
    return out


def offset(ra, dec, sep_arcsec, angle_rad):
    """Positions `sep_arcsec` away from (ra, dec) towards position angle `angle_rad` (exact, on the sphere)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    moved = SkyCoord(ra=np.asarray(ra) * u.deg, dec=np.asarray(dec) * u.deg).directional_offset_by(
        np.asarray(angle_rad) * u.rad, np.asarray(sep_arcsec) * u.arcsec)
    return moved.ra.deg, moved.dec.deg
