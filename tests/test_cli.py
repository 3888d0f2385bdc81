"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


BAD_CLIENT_SETTINGS = [
    ({"ALERTFEAT_LIBRDKAFKA": '{"linger.ms": 5,'}, "librdkafka (ALERTFEAT_LIBRDKAFKA): not valid JSON"),
    ({"ALERTFEAT_LIBRDKAFKA_CONSUMER": '{"fetch.min.byte": 1}'},
     "librdkafka_consumer (ALERTFEAT_LIBRDKAFKA_CONSUMER): 'fetch.min.byte': No such configuration property"),
    ({"ALERTFEAT_LIBRDKAFKA_PRODUCER": '{"enable.idempotence": "maybe"}'},
     "librdkafka_producer (ALERTFEAT_LIBRDKAFKA_PRODUCER): 'enable.idempotence': Expected bool value"),
    ({"ALERTFEAT_LIBRDKAFKA_PRODUCER": '{"linger.ms": "soon"}'},
     "librdkafka_producer (ALERTFEAT_LIBRDKAFKA_PRODUCER): 'linger.ms': Invalid value"),
    ({"ALERTFEAT_LIBRDKAFKA": '{"client.id": {"nested": 1}}'},
     "librdkafka (ALERTFEAT_LIBRDKAFKA): 'client.id' must be a string, number or boolean"),
    ({"ALERTFEAT_REDIS_URL": "redis://u:MARKpw@127.0.0.1:six/0"},
     "redis_url (ALERTFEAT_REDIS_URL): Port could not be cast to integer"),
    ({"ALERTFEAT_REDIS_URL": "redis://127.0.0.1:6379/0?password=MARKpw&socket_timeout=soon"},
     "redis_url (ALERTFEAT_REDIS_URL): Invalid value for 'socket_timeout'"),
    ({"ALERTFEAT_KAFKA_SECURITY_PROTOCOL": "SSL", "ALERTFEAT_KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem"},
     "Kafka consumer settings (kafka_*, librdkafka*): Failed to create consumer: ssl.ca.location failed"),
]


@pytest.mark.parametrize("env, message", BAD_CLIENT_SETTINGS, ids=[m.split(":")[0] for _, m in BAD_CLIENT_SETTINGS])
def test_bad_client_settings_fail_at_start_in_one_line(env, message):
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")}
    out = alertfeat("run", env=clean | {"ALERTFEAT_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"} | env)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    assert "MARKpw" not in out.stderr
