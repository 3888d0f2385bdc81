"""The configured catalogs of a service, and the batch cross-match over all of them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CatalogError
from .hats import HatsCatalog, HatsColumns, pixel_order
from .match import ARCSEC, scatter_matches
from .store import Catalog, catalogs_dir, check_name, julian_year, load_catalog

log = logging.getLogger(__name__)

DEFAULT_CATALOGS = ("gaia", "hipparcos")


@dataclass
class XmatchResult:
    """Matches of a batch, ragged: the matches of alert i are [offsets[i], offsets[i+1]).

    Within an alert, matches are grouped by catalog (in `catalogs` order), nearest first.
    """

    catalogs: tuple[str, ...]
    offsets: np.ndarray  # int64 [n + 1]
    catalog: np.ndarray  # int8 [m]: index into `catalogs`
    source_id: np.ndarray  # int64 [m]
    sep_arcsec: np.ndarray  # float64 [m]
    mag: np.ndarray  # float32 [m]; NaN when the catalog has none
    row: np.ndarray  # int64 [m]: row in the catalog's columns (for carried columns)
    nearest: np.ndarray  # int64 [n, n_catalogs]: index of the nearest match per catalog, -1 if none
    near_bright_star: np.ndarray  # bool [n]
    carried_names: tuple[tuple[str, ...], ...] = ()  # per catalog, the columns carried into the xmatch topic
    carried: np.ndarray | None = None  # float64 [m, max carried]: their values per match (NaN past the catalog's)

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass(frozen=True)
class CatalogConfig:
    name: str
    radius_arcsec: float


class CatalogSet:
    """Catalogs loaded (memory-mapped) from `<data_dir>/catalogs`, matched in configured order."""

    def __init__(self, catalogs: Sequence[Catalog], radii_arcsec: Sequence[float], max_matches: int = 5,
                 bright_catalog: str | None = None, bright_mag: float = 10.0, bright_radius_arcsec: float = 30.0,
                 carry: dict[str, Sequence[str]] | None = None):
        if len(catalogs) != len(radii_arcsec):
            raise ValueError("one radius per catalog")
        if len(catalogs) > 127:
            raise CatalogError("at most 127 catalogs")
        names = [c.name for c in catalogs]
        if len(set(names)) != len(names):
            raise CatalogError(f"catalog names repeat: {names}")
        if bright_catalog is not None and bright_catalog not in names:
            raise CatalogError(f"the bright-star catalog {bright_catalog!r} is not among the catalogs {names}")
        if max_matches < 1:
            raise ValueError("max_matches must be at least 1")
        self.catalogs = list(catalogs)
        self.names = tuple(names)
        self.radii_arcsec = [float(r) for r in radii_arcsec]
        self.max_matches = int(max_matches)
        self.bright_catalog = bright_catalog
        self.bright_mag = float(bright_mag)
        self.bright_radius_arcsec = float(bright_radius_arcsec)
        carry = carry or {}
        self.carried_names = tuple(tuple(carry.get(name, ())) for name in names)
        for c, cols in zip(self.catalogs, self.carried_names):
            for col in cols:
                c.column(col)  # a column the catalog lacks fails here, at start
        for c in self.catalogs:
            if isinstance(c, Catalog) and c.rows == 0:
                log.warning("catalog %s is empty: it will never match", c.name)

    @classmethod
    def from_settings(cls, settings) -> CatalogSet:
        """The catalogs of `settings.xmatch_catalogs`: HATS ones (xmatch_hats) opened in place, the
        others from `<data_dir>/catalogs`, where the default ones are imported on first use."""
        root = catalogs_dir(settings.data_dir)
        hats = settings.xmatch_hats
        ensure_default_catalogs(settings.data_dir, [n for n in settings.xmatch_catalogs if n not in hats])
        catalogs = [open_hats(name, hats[name]) if name in hats else load_catalog(root / name)
                    for name in settings.xmatch_catalogs]
        radii = [settings.xmatch_catalog_radius_arcsec.get(name, settings.xmatch_radius_arcsec)
                 for name in settings.xmatch_catalogs]
        return cls(catalogs, radii, settings.xmatch_max_matches, settings.xmatch_bright_star_catalog,
                   settings.xmatch_bright_star_mag, settings.xmatch_bright_star_radius_arcsec,
                   carry={name: cfg.columns for name, cfg in hats.items()})

    def match(self, ra: np.ndarray, dec: np.ndarray, mjd: np.ndarray) -> XmatchResult:
        """Cross-match a batch: positions in degrees, epochs as MJD (NaN: the catalog epoch)."""
        ra = np.ascontiguousarray(ra, np.float64)
        dec = np.ascontiguousarray(dec, np.float64)
        year = np.ascontiguousarray(julian_year(mjd), np.float64)
        n, cap = len(ra), self.max_matches
        if len(dec) != n or len(year) != n:
            raise ValueError("ra, dec and mjd differ in length")
        per_catalog = []
        order = pixel_order(ra, dec) if any(isinstance(c, HatsCatalog) for c in self.catalogs) else None
        for c, radius in zip(self.catalogs, self.radii_arcsec):
            count = np.empty(n, np.int64)
            rows = np.empty((n, cap), np.int64)
            seps = np.empty((n, cap), np.float64)
            bright = np.empty(n, np.bool_)
            dt = np.nan_to_num(year - c.epoch, nan=0.0) if c.has_pm else np.zeros(n)
            is_bright = c.name == self.bright_catalog
            c.search(ra, dec, dt, radius * ARCSEC, self.bright_mag,
                     self.bright_radius_arcsec * ARCSEC if is_bright else -1.0, count, rows, seps, bright, order)
            per_catalog.append((count, rows, seps, bright if is_bright else None))
        total = np.zeros(n, np.int64)
        for count, *_ in per_catalog:
            total += count
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(total, out=offsets[1:])
        m = int(offsets[-1])
        out = XmatchResult(
            catalogs=self.names, offsets=offsets, catalog=np.empty(m, np.int8), source_id=np.empty(m, np.int64),
            sep_arcsec=np.empty(m, np.float64), mag=np.empty(m, np.float32), row=np.empty(m, np.int64),
            nearest=np.empty((n, len(self.catalogs)), np.int64), near_bright_star=np.zeros(n, np.bool_),
        )
        start = offsets[:-1].copy()
        for col, (c, (count, rows, seps, bright)) in enumerate(zip(self.catalogs, per_catalog)):
            scatter_matches(start, count, rows, seps, c.id, c.mag, np.int8(col), out.catalog, out.source_id,
                            out.sep_arcsec, out.mag, out.row, out.nearest, col)
            start += count
            if bright is not None:
                out.near_bright_star |= bright
        self._carry(out)
        return out

    def _carry(self, out: XmatchResult) -> None:
        """The carried columns' values of every match (read now: HATS arena rows move on the next batch)."""
        out.carried_names = self.carried_names
        width = max((len(cols) for cols in self.carried_names), default=0)
        out.carried = np.full((len(out.row), width), np.nan)
        for col, (c, names) in enumerate(zip(self.catalogs, self.carried_names)):
            if names:
                sel = np.flatnonzero(out.catalog == col)
                for t, name in enumerate(names):
                    out.carried[sel, t] = c.column(name)[out.row[sel]]

    def warm_up(self) -> None:
        """Compile (or load from cache) the kernels before the first batch."""
        self.match(np.array([10.0, np.nan]), np.array([-20.0, 0.0]), np.array([60000.0, np.nan]))


def open_hats(name: str, cfg) -> HatsCatalog:
    """A HATS catalog opened in place from its xmatch_hats settings (HatsCatalogSettings)."""
    cols = HatsColumns(id=cfg.id, mag=cfg.mag, pmra=cfg.pmra, pmdec=cfg.pmdec, carry=tuple(cfg.columns))
    return HatsCatalog.open(name, cfg.path, cols, epoch=cfg.epoch, cache_mb=cfg.cache_mb,
                            pm_max_mas_yr=cfg.pm_max_mas_yr)


def ensure_default_catalogs(data_dir: str | Path, names: Sequence[str] = DEFAULT_CATALOGS) -> list[Path]:
    """Import the bundled catalogs among `names` that are not in `<data_dir>/catalogs` yet.

    Another process may import the same catalog at the same time: the directory appears
    atomically and the first to finish wins, so every process sees one complete catalog.
    """
    from .importers import import_gaia, import_hipparcos

    root = catalogs_dir(data_dir)
    made = []
    for name in names:
        check_name(name)
        if (root / name / "manifest.json").is_file():
            continue
        if name not in DEFAULT_CATALOGS:
            raise CatalogError(f"catalog {name!r} is not in {root}: import it with "
                               f"`alertfeat catalog import parquet|hats ... --name {name}`")
        log.info("importing the %s catalog into %s (first use)", name, root)
        try:
            made.append(import_gaia(root, replace=False) if name == "gaia" else import_hipparcos(root, replace=False))
        except OSError as exc:
            raise CatalogError(f"cannot import catalog {name} into {root}: {exc}") from None
    return made
