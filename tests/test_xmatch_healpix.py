"""The numba HEALPix code equals astropy-healpix, and the neighbourhood bound the kernel relies on holds."""

from __future__ import annotations

import numpy as np
import pytest

from alertfeat.xmatch.healpix import ang2pix_nest_array, neighbours_nest_array
from alertfeat.xmatch.match import SAFE_FRACTION

hp_mod = pytest.importorskip("astropy_healpix")
u = pytest.importorskip("astropy.units")


def _random(n, seed):
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    # Near the poles and the seam, off exact pixel edges.
    ra = np.concatenate([ra, rng.uniform(0, 360, 2000), rng.uniform(-1e-6, 1e-6, 2000) % 360])
    dec = np.concatenate([dec, 90 - rng.uniform(0, 1e-3, 1000), -90 + rng.uniform(0, 1e-3, 1000), rng.uniform(-90, 90, 2000)])
    return ra, dec


@pytest.mark.parametrize("order", [0, 1, 5, 8, 13, 20, 29])
def test_ang2pix_equals_astropy_healpix(order):
    ra, dec = _random(100_000, order)
    ref = hp_mod.HEALPix(nside=2**order, order="nested").lonlat_to_healpix(ra * u.deg, dec * u.deg)
    np.testing.assert_array_equal(ang2pix_nest_array(order, ra, dec), ref)


@pytest.mark.parametrize("order", [0, 1, 2, 7, 12])
def test_neighbours_equal_astropy_healpix(order):
    hp = hp_mod.HEALPix(nside=2**order, order="nested")
    pix = np.arange(hp.npix) if hp.npix < 200_000 else np.random.default_rng(0).integers(0, hp.npix, 100_000)
    ours = neighbours_nest_array(order, pix)
    with np.errstate(invalid="ignore"):
        ref = hp.neighbours(pix).T
    for a, b in zip(ours, ref):
        assert set(a[a >= 0]) == set(b[b >= 0])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_points_beyond_the_neighbours_are_far(order):
    """Every point outside a pixel's 3x3 neighbourhood is more than SAFE_FRACTION * sqrt(area) away."""
    hp = hp_mod.HEALPix(nside=2**order, order="nested")
    lon, lat = hp.boundaries_lonlat(np.arange(hp.npix), step=16)
    lon, lat = lon.to_value(u.rad), lat.to_value(u.rad)
    edge = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)
    theta = np.sqrt(4 * np.pi / hp.npix)
    nb = neighbours_nest_array(order, np.arange(hp.npix))
    closest = np.inf
    centre = edge.mean(axis=1)
    centre /= np.linalg.norm(centre, axis=1)[:, None]
    for p in range(hp.npix):
        others = np.setdiff1d(np.flatnonzero(centre @ centre[p] > np.cos(4 * theta)), np.r_[nb[p][nb[p] >= 0], p])
        cos = np.einsum("ik,qjk->qij", edge[p], edge[others]).max()
        closest = min(closest, np.arccos(min(cos, 1.0)) / theta)
    assert closest > SAFE_FRACTION * 1.3, closest
