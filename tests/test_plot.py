"""`alertfeat plot`: the PNG is made, has its panels, and its periodogram is the features' one."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from alertfeat.plot import ObjectCurve, alerts_in_files, curve_from_alerts, periodogram
from tests.helpers import write_simulated

pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
import matplotlib.image  # noqa: E402


@pytest.fixture(scope="module")
def alerts(tmp_path_factory):
    path = tmp_path_factory.mktemp("plot") / "alerts.avro"
    write_simulated(path, 400, 40, seed=3)
    return path


@pytest.fixture(scope="module")
def periodograms(alerts) -> list[tuple[ObjectCurve, object]]:
    ids = {record["diaSource"]["diaObjectId"] for record, _ in alerts_in_files([alerts])}
    curves = [curve_from_alerts(alerts_in_files([alerts]), oid) for oid in sorted(ids)]
    return [(curve, periodogram(curve)) for curve in curves]


def test_plot_of_a_periodic_object_has_its_panels(alerts, periodograms, tmp_path):
    # The most significant period among the simulated objects: a periodic one.
    found = [(pg.fap, curve) for curve, pg in periodograms if pg is not None]
    fap, curve = min(found, key=lambda item: item[0])
    assert fap < 1e-6
    out = tmp_path / "object.png"
    run = subprocess.run([sys.executable, "-m", "alertfeat.cli", "plot", str(alerts), "--object",
                          str(curve.object_id), "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "panels: light curve, periodogram, folded" in run.stderr
    assert f"{len(curve.mjd)} points" in run.stderr
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (960, 800)  # three panels of 8 x 3.2 inches at 100 dpi
    assert image[..., :3].std() > 0.05  # something is drawn


def test_plotted_periodogram_peaks_where_the_features_say(periodograms):
    """The power curve (exact_powers over the grid) and the published multiPeriod (the peak
    search) come from different kernels; the curve's maximum must be the published peak."""
    checked = 0
    for curve, pg in periodograms:
        if pg is None:
            continue
        best = pg.frequency[np.argmax(pg.power)]
        assert best == pytest.approx(1 / pg.period, rel=1e-6), curve.object_id
        assert pg.power.max() == pytest.approx(pg.power_at_period, rel=1e-6)
        checked += 1
    assert checked >= 30


def test_unknown_object_is_one_line(alerts, tmp_path):
    run = subprocess.run([sys.executable, "-m", "alertfeat.cli", "plot", str(alerts), "--object", "42",
                          "--out", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["alertfeat: no sources of object 42 found"]
    assert not (tmp_path / "x.png").exists()
