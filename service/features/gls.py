"""Power of the multiband generalized Lomb-Scargle model on grid frequencies f_k = f_min + k df.

Model: per band a floating mean plus one sinusoid, the frequency shared. No parameter is shared
between bands, so chi2(f) is a sum of independent per-band fits and

    power(f) = sum_b (chi2_0,b - chi2_b(f)) / sum_b chi2_0,b

which is astropy's LombScargleMultiband(nterms_base=0, nterms_band=1) without regularization.

Inputs are one light curve's points of the scanned bands, band by band (seg), times centred
(small |t| keeps phases exact), weights w = 1/err^2 and wy = w (y - band's weighted mean), scaled
so that sum w = 1 over the periodogram's points and share + sum_b chi2_0,b = 1, where share is the
chi2_0 of bands fitted exactly at every frequency (3 points for 3 parameters), which are not
scanned. That keeps float32 sums in range and makes the reduction sum the power itself.

Evaluators:
- lane_powers: one SIMD vector of frequencies at once, 32 in float32 (ranking, relative error
  ~1e-6) or 8 in float64;
- exact_powers: float64 scalar, for values around single peaks.
Phases exp(i omega_k t) come from tables and recurrences, never from per-frequency sin/cos.
"""

from __future__ import annotations

import math

from numba import njit

from . import simd

LANES = 32  # float32 lanes of one simd vector (two 512-bit registers: one pass shares each point's broadcasts)
LANES_F64 = 8


@njit(cache=True, nogil=True, error_model="numpy")
def centred_normal_matrix(sc, ss, scc, scs, weight):
    """(cc, s2, cs, det): the cos/sin normal matrix with the floating mean projected out, from the
    weighted sums of c, s, c^2 and c s (s^2 = weight - c^2)."""
    cc = scc - sc * sc / weight
    s2 = (weight - scc) - ss * ss / weight
    cs = scs - sc * ss / weight
    return cc, s2, cs, cc * s2 - cs * cs


@njit(cache=True, nogil=True, error_model="numpy")
def band_reduction(sc, ss, scc, scs, syc, sys_, weight, chi2_0):
    """chi2_0 - chi2(f) of one band's mean + sinusoid fit, from its weighted trig sums (y centred)."""
    cc, s2, cs, det = centred_normal_matrix(sc, ss, scc, scs, weight)
    if det > 0.0:
        red = (s2 * syc * syc + cc * sys_ * sys_ - 2.0 * cs * syc * sys_) / det
    elif cc >= s2 and cc > 0.0:  # collinear sin/cos columns: one free direction is left
        red = syc * syc / cc
    elif s2 > 0.0:
        red = sys_ * sys_ / s2
    else:
        red = 0.0
    # Exact arithmetic keeps it in [0, chi2_0]. Near-collinear columns (a band of few points whose
    # phases almost coincide) make the 2x2 solve ill-conditioned; clamping keeps the value in range
    # (and exact for a 3-point band, which any non-collinear sinusoid fits exactly).
    return min(max(red, 0.0), chi2_0)


@njit(cache=True, nogil=True, error_model="numpy")
def phase_table(t, omega, count, out_c, out_s):
    """out[i, l] = exp(i l omega t_i), l < count, by recurrence from one exact sin/cos per point."""
    for i in range(t.shape[0]):
        d_c = math.cos(omega * t[i])
        d_s = math.sin(omega * t[i])
        z_c = 1.0
        z_s = 0.0
        for lane in range(count):
            out_c[i, lane] = z_c
            out_s[i, lane] = z_s
            z_c, z_s = z_c * d_c - z_s * d_s, z_s * d_c + z_c * d_s


# Inlined into its callers at numba-IR level, so the hot loop is optimized where it is used.
@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def lane_powers(base_c, base_s, table_c, table_s, stride, offset, root_w, root_wy, seg, weight, chi2_0, share,
                exact, out):
    """out[l] = share + sum_b (chi2_0,b - chi2_b) at the phases base_i * table[i * stride + offset + l],
    for every lane l of one SIMD vector: 32 in float32 or 8 in float64, following the tables' dtype.
    With share + sum_b chi2_0,b = 1 (kernels scales them so), that is the power.

    base_c/base_s, root_w = sqrt(w), root_wy = wy / sqrt(w): [n]; table_c/table_s: C-contiguous
    [n * stride]; out: [lanes], tables' dtype. With u = sqrt(w) cos and v = sqrt(w) sin (sqrt(w) folded
    into the per-point base phase), every weighted sum is one fused multiply-add per point.
    exact: band_reduction's treatment of collinear sin/cos columns (float64); otherwise, for ranking,
    such a band counts as fitted exactly (an upper bound; two divisions fewer per band).
    """
    zero = simd.splat(0.0, table_c)
    total = simd.splat(share, table_c)
    for b in range(seg.shape[0] - 1):
        sc = zero
        ss = zero
        scc = zero
        scs = zero
        syc = zero
        sy = zero
        for i in range(seg[b], seg[b + 1]):
            bc = simd.splat(base_c[i] * root_w[i], table_c)
            bs = simd.splat(base_s[i] * root_w[i], table_c)
            tc = simd.load(table_c, i * stride + offset)
            ts = simd.load(table_s, i * stride + offset)
            u = simd.fma(bc, tc, simd.mul(simd.splat(-base_s[i] * root_w[i], table_c), ts))
            v = simd.fma(bs, tc, simd.mul(bc, ts))
            ri = simd.splat(root_w[i], table_c)
            yi = simd.splat(root_wy[i], table_c)
            sc = simd.fma(ri, u, sc)
            ss = simd.fma(ri, v, ss)
            scc = simd.fma(u, u, scc)
            scs = simd.fma(u, v, scs)
            syc = simd.fma(yi, u, syc)
            sy = simd.fma(yi, v, sy)
        weight_b = simd.splat(weight[b], table_c)
        inv_weight = simd.splat(1.0 / weight[b], table_c)
        cc = simd.sub(scc, simd.mul(simd.mul(sc, sc), inv_weight))
        s2 = simd.sub(simd.sub(weight_b, scc), simd.mul(simd.mul(ss, ss), inv_weight))
        cs = simd.sub(scs, simd.mul(simd.mul(sc, ss), inv_weight))
        det = simd.sub(simd.mul(cc, s2), simd.mul(cs, cs))
        syc2 = simd.mul(syc, syc)
        sy2 = simd.mul(sy, sy)
        num = simd.sub(simd.add(simd.mul(s2, syc2), simd.mul(cc, sy2)),
                       simd.mul(simd.splat(2.0, table_c), simd.mul(cs, simd.mul(syc, sy))))
        top = simd.splat(chi2_0[b], table_c)
        if exact:  # collinear columns leave one direction to fit; 0/0 lanes become NaN, then 0
            one_direction = simd.where_greater(s2, cc, simd.div(sy2, s2), simd.div(syc2, cc))
            fitted = simd.where_greater(det, zero, simd.div(num, det), one_direction)
        else:
            fitted = simd.where_greater(det, zero, simd.div(num, det), top)
        total = simd.add(total, simd.minimum(simd.maximum(fitted, zero), top))
    simd.store(out, 0, total)


@njit(cache=True, nogil=True, error_model="numpy")
def exact_powers(cur_c, cur_s, step_c, step_s, w, wy, seg, weight, chi2_0, share, count, out):
    """out[m] = power at phases cur * step^m, m < count, in float64; advances cur in place.

    share: the chi2_0 of bands fitted exactly at every frequency (not in seg).
    """
    chi2_total = share
    for b in range(seg.shape[0] - 1):
        chi2_total += chi2_0[b]
    for m in range(count):
        red = share
        for b in range(seg.shape[0] - 1):
            sc = 0.0
            ss = 0.0
            scc = 0.0
            scs = 0.0
            syc = 0.0
            sys_ = 0.0
            for i in range(seg[b], seg[b + 1]):
                c = cur_c[i]
                s = cur_s[i]
                wc = w[i] * c
                sc += wc
                ss += w[i] * s
                scc += wc * c
                scs += wc * s
                syc += wy[i] * c
                sys_ += wy[i] * s
                cur_c[i] = c * step_c[i] - s * step_s[i]
                cur_s[i] = s * step_c[i] + c * step_s[i]
            red += band_reduction(sc, ss, scc, scs, syc, sys_, weight[b], chi2_0[b])
        out[m] = red / chi2_total
