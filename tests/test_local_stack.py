"""`alertfeat local up` / `down`, used the way the README walks through it: eval the exports,
replay, run the service, subscribe, stop everything."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import redis

from alertfeat.kafka_io import ensure_topics
from tests.helpers import write_simulated


def alertfeat(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertfeat.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_local_up_replay_run_subscribe_down(tmp_path, data_dir):
    base = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")}
    base["ALERTFEAT_DATA_DIR"] = str(data_dir)  # the session's catalogs; the state file goes there too
    up = alertfeat("local", "up", env=base)
    assert up.returncode == 0, up.stderr
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", up.stdout, re.M))
    assert set(exports) == {"ALERTFEAT_KAFKA_BOOTSTRAP_SERVERS", "ALERTFEAT_REDIS_URL"}
    state = json.loads((data_dir / "local" / "state.json").read_text())
    pids = [p["pid"] for p in state["processes"]]
    try:
        assert all(map(pid_alive, pids))
        again = alertfeat("local", "up", env=base)  # idempotent: the same servers
        assert again.stdout == up.stdout and "already running" in again.stderr

        env = {**base, **exports, "ALERTFEAT_METRICS_PORT": "0"}
        ensure_topics({"bootstrap.servers": exports["ALERTFEAT_KAFKA_BOOTSTRAP_SERVERS"]}, {"alerts": 1})
        assert redis.Redis.from_url(exports["ALERTFEAT_REDIS_URL"]).ping()
        alerts = tmp_path / "alerts.avro"
        write_simulated(alerts, 30, 6)
        replay = alertfeat("replay", str(alerts), env=env)
        assert replay.returncode == 0, replay.stderr
        service = subprocess.Popen([sys.executable, "-m", "alertfeat.cli", "run"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            sub = alertfeat("subscribe", "--max", "30", "--timeout", "120", "--json", env=env, timeout=600)
        finally:
            service.terminate()
            service.wait(60)
        assert sub.returncode == 0, sub.stderr
        got = [json.loads(line) for line in sub.stdout.splitlines()]
        assert len(got) == 30
        assert {g["historySource"] for g in got} <= {"redis", "redis_partial"}  # the local Redis served history
        # `plot` with no file reads the enriched topic.
        oid = got[-1]["diaObjectId"]
        png = tmp_path / "from-topic.png"
        plot = alertfeat("plot", "--object", str(oid), "--out", str(png), "--timeout", "3", env=env)
        assert plot.returncode == 0, plot.stderr
        assert png.stat().st_size > 10_000 and f"object {oid}" in plot.stderr
        # ... and with --redis, the object's stored history.
        stored = alertfeat("plot", "--redis", "--object", str(oid), "--out", str(tmp_path / "redis.png"), env=env)
        assert stored.returncode == 0, stored.stderr
        assert (tmp_path / "redis.png").stat().st_size > 10_000
        n_stored = int(re.search(r"(\d+) points", stored.stderr).group(1))
        assert 0 < n_stored <= int(re.search(r"(\d+) points", plot.stderr).group(1))
    finally:
        down = alertfeat("local", "down", env=base)
    assert down.returncode == 0 and "stopped tansu, redis" in down.stderr
    assert not any(map(pid_alive, pids))
    assert not (data_dir / "local" / "state.json").exists()
    assert "nothing was running" in alertfeat("local", "down", env=base).stderr
