"""Per-band sinusoid at the best frequency, and the false-alarm probability of the best power."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .gls import centred_normal_matrix


@njit(cache=True, nogil=True, error_model="numpy")
def sinusoid_fit(t, f, e, omega, epoch):
    """Weighted fit f = m + a sin(omega (t - epoch)) + b cos(omega (t - epoch)): (sqrt(a^2 + b^2), atan2(b, a)).

    astropy's LombScargle.model_parameters orders the same coefficients [m, a, b].
    """
    n = t.shape[0]
    weight = 0.0
    swf = 0.0
    for i in range(n):
        wi = 1.0 / (e[i] * e[i])
        weight += wi
        swf += wi * f[i]
    mean = swf / weight
    sc = 0.0
    ss = 0.0
    scc = 0.0
    scs = 0.0
    syc = 0.0
    sys_ = 0.0
    for i in range(n):
        wi = 1.0 / (e[i] * e[i])
        phase = omega * (t[i] - epoch)
        c = math.cos(phase)
        s = math.sin(phase)
        y = wi * (f[i] - mean)
        sc += wi * c
        ss += wi * s
        scc += wi * c * c
        scs += wi * c * s
        syc += y * c
        sys_ += y * s
    cc, s2, cs, det = centred_normal_matrix(sc, ss, scc, scs, weight)
    if not det > 0.0:  # collinear sin/cos columns: no unique sinusoid at this frequency
        return np.nan, np.nan
    b = (s2 * syc - cs * sys_) / det
    a = (cc * sys_ - cs * syc) / det
    return math.hypot(a, b), math.atan2(b, a)


@njit(cache=True, nogil=True, error_model="numpy")
def baluev_fap(power, t, w, f_max):
    """Baluev (2008) alias-free false-alarm probability of a standard-normalized power, as astropy's
    fap_baluev with dH = 1, dK = 3 on these points: effective bandwidth f_max sqrt(4 pi Var_w(t))."""
    n = t.shape[0]
    z = min(max(power, 0.0), 1.0)  # an exact fit can round to 1 + 1e-16
    weight = 0.0
    swt = 0.0
    for i in range(n):
        weight += w[i]
        swt += w[i] * t[i]
    t_mean = swt / weight
    var_t = 0.0
    for i in range(n):
        var_t += w[i] * (t[i] - t_mean) ** 2
    var_t /= weight
    n_h = n - 1.0
    n_k = n - 3.0
    gamma = math.sqrt(2.0 / n_h) * math.exp(math.lgamma(n_h / 2.0) - math.lgamma((n_h - 1.0) / 2.0))
    bandwidth = f_max * math.sqrt(4.0 * math.pi * var_t)
    tau = gamma * bandwidth * (1.0 - z) ** (0.5 * (n_k - 1.0)) * math.sqrt(0.5 * n_h * z)
    single = (1.0 - z) ** (0.5 * n_k)
    return -math.expm1(-tau) + single * math.exp(-tau)
