"""The kernels' slots: which value each kernel writes where.

The published order lives in schemas/features.json; the dispatcher maps these slots onto it by
name, so reordering the JSON needs no kernel change and a name the kernels do not compute fails
loudly at the first call.
"""

from __future__ import annotations

N_BANDS = 6

GLOBAL_SLOTS = (
    "nDiaSources", "firstMjd", "lastMjd", "fracNegative", "peakMjd", "colorGR", "colorRI",
    "multiPeriod", "multiPower", "multiFap", "multiPeriod2", "multiPower2",
)
(N_DIA_SOURCES, FIRST_MJD, LAST_MJD, FRAC_NEGATIVE, PEAK_MJD, COLOR_GR, COLOR_RI,
 MULTI_PERIOD, MULTI_POWER, MULTI_FAP, MULTI_PERIOD2, MULTI_POWER2) = range(len(GLOBAL_SLOTS))

BAND_SLOTS = (
    "nObs", "psfFluxMean", "psfFluxMeanErr", "psfFluxSigma", "psfFluxChi2", "psfFluxMin", "psfFluxMax",
    "psfFluxErrMean", "psfFluxMaxSlope", "psfFluxPercentile05", "psfFluxPercentile25",
    "psfFluxPercentile50", "psfFluxPercentile75", "psfFluxPercentile95", "psfFluxMAD", "psfFluxSkew",
    "psfFluxKurtosis", "psfFluxLinearSlope", "psfFluxLinearSlopeErr", "psfFluxLinearRedChi2",
    "psfFluxLinearAtLast", "psfFluxStetsonJ", "psfFluxStetsonK", "psfFluxExcessVar", "psfFluxEta",
    "psfFluxBeyond1Std", "psfFluxRiseRate", "psfFluxDeclineRate", "multiAmp", "multiPhase",
)
(N_OBS, MEAN, MEAN_ERR, SIGMA, CHI2, MIN, MAX, ERR_MEAN, MAX_SLOPE, P05, P25, P50, P75, P95, MAD, SKEW,
 KURTOSIS, LINEAR_SLOPE, LINEAR_SLOPE_ERR, LINEAR_RED_CHI2, LINEAR_AT_LAST, STETSON_J, STETSON_K,
 EXCESS_VAR, ETA, BEYOND_1STD, RISE_RATE, DECLINE_RATE, MULTI_AMP, MULTI_PHASE) = range(len(BAND_SLOTS))

N_GLOBAL = len(GLOBAL_SLOTS)
N_PER_BAND = len(BAND_SLOTS)
N_SLOTS = N_GLOBAL + N_BANDS * N_PER_BAND


def slot_names(bands: tuple[str, ...]) -> tuple[str, ...]:
    """Slot s holds the feature named slot_names(bands)[s]; band b's block starts at N_GLOBAL + b * N_PER_BAND."""
    return GLOBAL_SLOTS + tuple(f"{b}_{f}" for b in bands for f in BAND_SLOTS)
