"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from alertfeat.schema_store import bundled_versions

COMMANDS = ("run", "simulate", "replay", "subscribe", "features", "demo")


def alertfeat(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertfeat.cli", *args], capture_output=True, text=True,
                          timeout=600, **kw)


def test_help_lists_every_command():
    out = alertfeat("--help")
    assert out.returncode == 0
    for c in COMMANDS:
        assert c in out.stdout


def test_simulate_then_features_json(tmp_path):
    path = tmp_path / "a.avro"
    assert alertfeat("simulate", "--alerts", "40", "--objects", "8", "--out", str(path)).returncode == 0
    out = alertfeat("features", str(path), "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 40
    for d in lines:
        assert {"diaSourceId", "diaObjectId", "featuresVersion", "historySource", "features"} <= d.keys()
        assert d["historySource"] == "alert"
        assert sum(d["features"][f"{b}_nObs"] for b in "ugrizy") >= 1


def test_features_over_the_sample_directory_covers_every_version():
    import lsst.alert.packet

    out = alertfeat("features", str(lsst.alert.packet.get_schema_root()), "--json")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == len(bundled_versions())


def test_invalid_config_fails_at_start_naming_the_field(tmp_path):
    import os

    env = {**os.environ, "ALERTFEAT_BATCH_SIZE": "0"}
    out = alertfeat("features", str(tmp_path / "none.avro"), env=env)
    assert out.returncode == 2 and "batch_size" in out.stderr
