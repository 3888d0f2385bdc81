"""Brent's bounded 1-D minimiser in reverse-communication form: numba, allocation-free, cacheable.

The caller evaluates the objective itself (no function is passed around, so numba can cache every
kernel):

    x = brent_start(state, lo, hi, tol)
    while not math.isnan(x):
        x = brent_tell(state, objective(x))
    best_x, best_value = state[X], state[FX]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

GOLDEN = 0.3819660112501051  # (3 - sqrt 5) / 2
A, B, X, W, V, FX, FW, FV, D, E, U, TOL, COUNT = range(13)
STATE_SIZE = 13
MAX_ITER = 100


@njit(cache=True, nogil=True, error_model="numpy")
def brent_start(state, lo, hi, tol):
    """Begin a search on [lo, hi] (x tolerance tol relative + 1e-10 absolute): the first x to evaluate."""
    x = lo + GOLDEN * (hi - lo)
    state[A] = lo
    state[B] = hi
    state[X] = state[W] = state[V] = state[U] = x
    state[D] = state[E] = 0.0
    state[TOL] = tol
    state[COUNT] = 0.0
    return x


@njit(cache=True, nogil=True, error_model="numpy")
def brent_tell(state, fu):
    """The objective at the last x asked for: the next x to evaluate, or NaN when converged."""
    a, b, x, w, v = state[A], state[B], state[X], state[W], state[V]
    fx, fw, fv, d, e, u = state[FX], state[FW], state[FV], state[D], state[E], state[U]
    if not fu == fu:  # NaN compares worst
        fu = np.inf
    if state[COUNT] == 0.0:
        fx = fw = fv = fu
    elif fu <= fx:
        if u >= x:
            a = x
        else:
            b = x
        v, w, x = w, x, u
        fv, fw, fx = fw, fx, fu
    else:
        if u < x:
            a = u
        else:
            b = u
        if fu <= fw or w == x:
            v, w = w, u
            fv, fw = fw, fu
        elif fu <= fv or v == x or v == w:
            v = u
            fv = fu
    state[COUNT] += 1.0
    m = 0.5 * (a + b)
    tol1 = state[TOL] * abs(x) + 1e-10
    tol2 = 2.0 * tol1
    done = abs(x - m) <= tol2 - 0.5 * (b - a) or state[COUNT] > MAX_ITER
    if not done:
        parabolic = False
        if abs(e) > tol1:
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            if abs(p) < abs(0.5 * q * e) and p > q * (a - x) and p < q * (b - x):
                e = d
                d = p / q
                if x + d - a < tol2 or b - x - d < tol2:
                    d = tol1 if m >= x else -tol1
                parabolic = True
        if not parabolic:
            e = (a - x) if x >= m else (b - x)
            d = GOLDEN * e
        u = x + d if abs(d) >= tol1 else x + (tol1 if d > 0 else -tol1)
    state[A], state[B], state[X], state[W], state[V] = a, b, x, w, v
    state[FX], state[FW], state[FV], state[D], state[E], state[U] = fx, fw, fv, d, e, u
    return math.nan if done else u
