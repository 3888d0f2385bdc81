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
def multiband_fap(power, n_points, n_bands, mean_time_variance, f_max):
    """False-alarm probability of the highest power on 0 < f <= f_max, under white Gaussian noise
    about one constant per band, for the model fitted: per band an offset and a sinusoid, the
    frequency shared (3 K parameters, 2 K of them beyond the null's K offsets).

    Baluev's (2008) extreme-value approach, generalised from one sinusoid (2 dof) to 2 K:
    - at one frequency the power is Beta(K, nu / 2) with nu = n_points - 3 K residual dof, so
      P(z > z0) = I_{1-z0}(nu/2, K) = (1 - z0)^(nu/2) sum_{j<K} (nu/2)_j / j! z0^j (K integer);
    - Rice's formula for the upcrossings of z0 by the power over frequency, each band's cos/sin
      coefficients varying at the rate sqrt(Var_w(t) of that band), bounded above (Jensen) by the
      rate sqrt(mean_time_variance) shared by all 2 K: mean_time_variance = sum over scanned bands of
      Var_w(t) / K (bands fitted exactly at every frequency add 0);
    - FAP = 1 - (1 - P_single) exp(-tau), tau the expected number of upcrossings; in [0, 1].
    For K = 1 it is astropy's fap_baluev (dH = 1, dK = 3). The spec (docs/features.md) gives the
    derivation and the limits (red noise, misestimated relative errors).
    """
    z = min(max(power, 0.0), 1.0)  # an exact fit can round to 1 + 1e-16
    nu = n_points - 3.0 * n_bands
    half = 0.5 * nu
    log_rest = math.log1p(-z) if z < 1.0 else -np.inf
    single = 0.0
    term = math.exp(half * log_rest)
    for j in range(n_bands):
        single += term
        term *= (half + j) / (j + 1.0) * z
    single = min(single, 1.0)
    if z <= 0.0 or mean_time_variance <= 0.0:
        return single
    # tau = 2 pi f_max sqrt(rate) E[z'+ | z] p(z): Gamma(nu/2) / (2 sqrt(pi) Gamma((nu+1)/2)) from
    # the residual direction, times 2 sqrt(z (1 - z)) and the Beta(K, nu/2) density.
    log_tau = (math.log(2.0 * math.pi * f_max * math.sqrt(mean_time_variance))
               - math.lgamma(half + 0.5) - 0.5 * math.log(math.pi) + math.lgamma(n_bands + half)
               - math.lgamma(n_bands) + (n_bands - 0.5) * math.log(z) + 0.5 * (nu - 1.0) * log_rest)
    tau = math.exp(log_tau)
    return min(max(-math.expm1(-tau) + single * math.exp(-tau), 0.0), 1.0)
