"""The feature kernel against numpy on random light curves."""

from __future__ import annotations

import numpy as np

from alertfeat.columns import Sources
from alertfeat.features import compute_features, feature_spec


def test_per_band_statistics_match_numpy():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 40, 50)
    m = counts.sum()
    lc = Sources.from_arrays(counts, source_id=np.arange(m), mjd=rng.uniform(60000, 60365, m),
                             band=rng.integers(0, 6, m).astype(np.int8), flux=rng.normal(100, 50, m),
                             flux_err=rng.uniform(-1, 10, m), flags=np.zeros(m, np.int64))
    lc.flux[rng.random(m) < 0.05] = np.nan
    out = compute_features(lc)
    spec = feature_spec()
    assert out.shape == (50, spec.size) and out.dtype == np.float32
    for i in range(50):
        rows = lc.rows(i)
        for b, band in enumerate(spec.bands):
            sel = (lc.band[rows] == b) & np.isfinite(lc.flux[rows]) & (lc.flux_err[rows] > 0)
            f, e = lc.flux[rows][sel], lc.flux_err[rows][sel]
            get = lambda name: out[i, spec.index(f"{band}_{name}")]
            assert get("nObs") == len(f)
            if len(f) == 0:
                assert np.isnan(get("psfFluxMean"))
                continue
            np.testing.assert_allclose(get("psfFluxMean"), np.average(f, weights=e**-2), rtol=1e-6)
            assert get("psfFluxMin") == np.float32(f.min()) and get("psfFluxMax") == np.float32(f.max())
            if len(f) > 1:
                np.testing.assert_allclose(get("psfFluxSigma"), np.std(f, ddof=1), rtol=1e-6)
            else:
                assert np.isnan(get("psfFluxSigma"))
