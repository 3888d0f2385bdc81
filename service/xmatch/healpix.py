"""HEALPix in the nested scheme, in numba: position -> pixel, pixel -> its 8 neighbours.

A port of the integer algorithms of the HEALPix C++ library (healpix_base.cc: loc2pix,
neighbors), so that the hot path needs no healpy. Orders 0..29; pixels are int64.
Positions go in as unit vectors, which keeps the poles exact (no division by cos(dec)).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MAX_ORDER = 29

# Offsets of the 8 neighbours in the face's (x, y) grid, and how to cross a face edge
# (HEALPix C++ nb_xoffset, nb_yoffset, nb_facearray, nb_swaparray).
_NB_X = np.array([-1, -1, 0, 1, 1, 1, 0, -1], np.int64)
_NB_Y = np.array([0, 1, 1, 1, 0, -1, -1, -1], np.int64)
_NB_FACE = np.array([
    [8, 9, 10, 11, -1, -1, -1, -1, 10, 11, 8, 9],   # S
    [5, 6, 7, 4, 8, 9, 10, 11, 9, 10, 11, 8],       # SE
    [-1, -1, -1, -1, 5, 6, 7, 4, -1, -1, -1, -1],   # E
    [4, 5, 6, 7, 11, 8, 9, 10, 11, 8, 9, 10],       # SW
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],         # centre
    [1, 2, 3, 0, 0, 1, 2, 3, 5, 6, 7, 4],           # NE
    [-1, -1, -1, -1, 7, 4, 5, 6, -1, -1, -1, -1],   # W
    [3, 0, 1, 2, 3, 0, 1, 2, 4, 5, 6, 7],           # NW
    [2, 3, 0, 1, -1, -1, -1, -1, 0, 1, 2, 3],       # N
], np.int64)
_NB_SWAP = np.array([[0, 0, 3], [0, 0, 6], [0, 0, 0], [0, 0, 5], [0, 0, 0],
                     [5, 0, 0], [0, 0, 0], [6, 0, 0], [3, 0, 0]], np.int64)


def n_pixels(order: int) -> int:
    return 12 << (2 * order)


@njit(cache=True, nogil=True)
def _spread_bits(v):
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    v = (v | (v << 1)) & 0x5555555555555555
    return v


@njit(cache=True, nogil=True)
def _compress_bits(v):
    v = v & 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    v = (v | (v >> 16)) & 0x00000000FFFFFFFF
    return v


@njit(cache=True, nogil=True)
def xyf2nest(order, ix, iy, face):
    return (face << (2 * order)) + _spread_bits(ix) + (_spread_bits(iy) << 1)


@njit(cache=True, nogil=True)
def nest2xyf(order, pix):
    face = pix >> (2 * order)
    sub = pix & ((np.int64(1) << (2 * order)) - 1)
    return _compress_bits(sub), _compress_bits(sub >> 1), face


@njit(cache=True, nogil=True)
def vec2pix_nest(order, x, y, z):
    """Nested pixel of the unit vector (x, y, z) at `order`."""
    nside = np.int64(1) << order
    za = abs(z)
    tt = math.atan2(y, x) * (2.0 / math.pi)  # (-2, 2]
    if tt < 0.0:
        tt += 4.0
    if tt >= 4.0:
        tt -= 4.0
    if za <= 2.0 / 3.0:
        temp1 = nside * (0.5 + tt)
        temp2 = nside * (z * 0.75)
        jp = np.int64(temp1 - temp2)  # index of the ascending edge line
        jm = np.int64(temp1 + temp2)  # index of the descending edge line
        ifp = jp >> order
        ifm = jm >> order
        if ifp == ifm:
            face = ifp | 4
        elif ifp < ifm:
            face = ifp
        else:
            face = ifm + 8
        ix = jm & (nside - 1)
        iy = nside - (jp & (nside - 1)) - 1
    else:
        ntt = min(np.int64(3), np.int64(tt))
        tp = tt - ntt
        if za < 0.99:
            tmp = nside * math.sqrt(3.0 * (1.0 - za))
        else:  # near the pole, from sin(theta) for precision
            tmp = nside * math.sqrt(x * x + y * y) / math.sqrt((1.0 + za) / 3.0)
        jp = min(np.int64(tp * tmp), nside - 1)
        jm = min(np.int64((1.0 - tp) * tmp), nside - 1)
        if z >= 0.0:
            face = ntt
            ix = nside - jm - 1
            iy = nside - jp - 1
        else:
            face = ntt + 8
            ix = jp
            iy = jm
    return xyf2nest(order, ix, iy, face)


@njit(cache=True, nogil=True)
def radec_to_vec(ra_deg, dec_deg):
    ra = math.radians(ra_deg)
    dec = math.radians(dec_deg)
    c = math.cos(dec)
    return c * math.cos(ra), c * math.sin(ra), math.sin(dec)


@njit(cache=True, nogil=True)
def ang2pix_nest(order, ra_deg, dec_deg):
    x, y, z = radec_to_vec(ra_deg, dec_deg)
    return vec2pix_nest(order, x, y, z)


@njit(cache=True, nogil=True)
def ang2pix_nest_array(order, ra_deg, dec_deg):
    """Nested pixels of arrays of positions in degrees (importers and tests)."""
    out = np.empty(len(ra_deg), np.int64)
    for i in range(len(ra_deg)):
        out[i] = ang2pix_nest(order, ra_deg[i], dec_deg[i])
    return out


@njit(cache=True, nogil=True)
def neighbours_nest(order, pix, out):
    """Write the 8 neighbours of `pix` into out[0:8] (-1 where a corner has only 7)."""
    nside = np.int64(1) << order
    ix, iy, face = nest2xyf(order, pix)
    if ix > 0 and ix < nside - 1 and iy > 0 and iy < nside - 1:
        for m in range(8):
            out[m] = xyf2nest(order, ix + _NB_X[m], iy + _NB_Y[m], face)
        return
    for m in range(8):
        x = ix + _NB_X[m]
        y = iy + _NB_Y[m]
        nb = 4
        if x < 0:
            x += nside
            nb -= 1
        elif x >= nside:
            x -= nside
            nb += 1
        if y < 0:
            y += nside
            nb -= 3
        elif y >= nside:
            y -= nside
            nb += 3
        f = _NB_FACE[nb, face]
        if f < 0:
            out[m] = -1
            continue
        bits = _NB_SWAP[nb, face >> 2]
        if bits & 1:
            x = nside - x - 1
        if bits & 2:
            y = nside - y - 1
        if bits & 4:
            x, y = y, x
        out[m] = xyf2nest(order, x, y, f)


@njit(cache=True, nogil=True)
def neighbours_nest_array(order, pix):
    out = np.empty((len(pix), 8), np.int64)
    for i in range(len(pix)):
        neighbours_nest(order, pix[i], out[i])
    return out
