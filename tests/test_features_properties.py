"""Properties of the feature kernels over generated light curves (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertfeat.features import compute_features, feature_spec
from tests.feature_oracles import SimCurve, as_sources, curve

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Times on a coarse lattice (plus jitter below 1e-6 d sometimes) so that equal and near-equal times,
# i.e. duplicates, are common; values from the whole float range, NaN and inf included.
_times = st.one_of(
    st.integers(0, 400).map(lambda d: 60000.0 + 0.25 * d),
    st.integers(0, 40).map(lambda d: 60000.0 + d + 4e-7),
    st.floats(59000.0, 62000.0),
)
_any_float = st.floats(allow_nan=True, allow_infinity=True)
_flux = st.one_of(st.floats(-1e6, 1e6), _any_float)
_err = st.one_of(st.floats(1e-3, 1e4), st.sampled_from([0.0, -1.0]), _any_float)
_row = st.tuples(_times, st.integers(-1, 5), _flux, _err, st.integers(1, 50))


@st.composite
def light_curves(draw, max_rows: int = 40) -> SimCurve:
    rows = draw(st.lists(_row, max_size=max_rows))
    if not rows:
        return curve([], [], [], [])
    mjd, band, flux, err, sid = (list(x) for x in zip(*rows))
    return curve(mjd, band, flux, err, sid)


@st.composite
def periodic_light_curves(draw) -> SimCurve:
    """Enough points in enough bands that the periodogram runs."""
    n = draw(st.integers(9, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mjd = 60000.0 + np.sort(rng.uniform(0, 365, n))
    band = rng.integers(1, 4, n)
    flux = rng.normal(0, 100, n) + draw(st.floats(0, 1000)) * np.sin(mjd / draw(st.floats(0.3, 30)))
    return curve(mjd, band, flux, rng.uniform(5, 50, n), rng.permutation(n) + 1)


def _features(c: SimCurve) -> np.ndarray:
    return compute_features(as_sources([c]))[0]


def _permuted(c: SimCurve, order: np.ndarray) -> SimCurve:
    return curve(c.mjd[order], c.band[order], c.flux[order], c.flux_err[order], c.source_id[order])


@PROPERTY_SETTINGS
@given(st.one_of(light_curves(), periodic_light_curves()), st.randoms())
def test_row_order_does_not_change_the_output(c: SimCurve, random):
    order = np.array(random.sample(range(len(c.mjd)), len(c.mjd)), np.int64)
    np.testing.assert_array_equal(_features(c), _features(_permuted(c, order)))


_invalid_point = st.one_of(
    st.tuples(_times, st.integers(0, 5), st.just(np.nan), st.floats(1, 10)),
    st.tuples(_times, st.integers(0, 5), st.sampled_from([np.inf, -np.inf]), st.floats(1, 10)),
    st.tuples(_times, st.integers(0, 5), st.floats(-1e3, 1e3), st.sampled_from([np.nan, np.inf, 0.0, -3.0])),
    st.tuples(_times, st.just(-1), st.floats(-1e3, 1e3), st.floats(1, 10)),
    st.tuples(st.sampled_from([np.nan, np.inf]), st.integers(0, 5), st.floats(-1e3, 1e3), st.floats(1, 10)),
)


@PROPERTY_SETTINGS
@given(st.one_of(light_curves(), periodic_light_curves()), _invalid_point, st.integers(0, 10**6),
       st.integers(-(2**62), 2**62))
def test_an_invalid_point_does_not_change_the_output(c: SimCurve, point, position, source_id):
    at = position % (len(c.mjd) + 1)
    mjd, band, flux, err = point
    extended = curve(np.insert(c.mjd, at, mjd), np.insert(c.band, at, band), np.insert(c.flux, at, flux),
                     np.insert(c.flux_err, at, err), np.insert(c.source_id, at, source_id))
    np.testing.assert_array_equal(_features(c), _features(extended))


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(light_curves(max_rows=60), periodic_light_curves()), max_size=6))
def test_no_input_raises_and_a_batch_equals_single_calls(curves):
    batch = compute_features(as_sources(curves))
    assert batch.shape == (len(curves), feature_spec().size) and batch.dtype == np.float32
    for row, c in zip(batch, curves):
        np.testing.assert_array_equal(row, _features(c))
