"""`alertfeat bench features` runs and reports its figures (their values are for the benchmark to say)."""

from __future__ import annotations

import json

from alertfeat.benchmarks.features import run
from alertfeat.cli import build_parser
from alertfeat.features import feature_spec


def test_the_cli_passes_the_options():
    args = build_parser().parse_args(["bench", "features", "--curves", "5", "--epochs", "40", "--repeats", "1",
                                      "--json"])
    assert (args.benchmark, args.opt_n_curves, args.opt_epochs, args.opt_repeats) == ("features", 5, 40, 1)


def test_a_small_run_reports_ours_light_curve_and_their_ratio():
    result = json.loads(json.dumps(run(n_curves=4, repeats=1)))
    assert result["grid_frequencies"] == feature_spec().grid.n_freq and result["epochs_per_curve"] == 80
    for key in ("ours_us_per_curve", "light_curve_us_per_curve", "speedup_vs_light_curve"):
        assert result[key] > 0, key
    breakdown = result["ours_breakdown_us"]
    assert 0 < breakdown["of_which_float32_scan"] and 0 < breakdown["points_and_statistics"]
    assert result["light_curve_breakdown_us"]["multiband_periodogram"] > 0
