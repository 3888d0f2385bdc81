"""`alertfeat bench decode` runs and reports every case (its speed is for the benchmark to say)."""

from __future__ import annotations

import json

from alertfeat.benchmarks.decode import run
from alertfeat.cli import build_parser


def test_the_cli_passes_the_options():
    args = build_parser().parse_args(["bench", "decode", "--batch-size", "20", "--distinct", "3", "--repeats", "1",
                                      "--json"])
    assert (args.benchmark, args.opt_batch_size, args.opt_distinct, args.opt_repeats) == ("decode", 20, 3, 1)


def test_a_small_run_reports_every_case():
    result = json.loads(json.dumps(run(batch_size=20, distinct=3, repeats=1)))
    assert set(result["cases"]) == {f"prv{k}_{c}" for k in (0, 20, 80) for c in ("no_cutouts", "cutouts")}
    for name, case in result["cases"].items():
        for key in ("ours_decode_us", "fastavro_decode_us", "fastavro_encode_us", "decode_speedup",
                    "ours_enriched_encode_us", "fastavro_enriched_reencode_us", "enriched_encode_fraction"):
            assert case[key] > 0, (name, key)
        if "no_cutouts" in name:  # three 20-30 KB stamps make the difference
            with_cutouts = result["cases"][name.replace("no_cutouts", "cutouts")]
            assert with_cutouts["message_bytes"] > case["message_bytes"] + 60_000
