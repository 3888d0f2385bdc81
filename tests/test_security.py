"""Kafka TLS and SASL, Redis ACL and TLS, and secrets that never reach the logs.

What Tansu 0.6.0 (the only Kafka-protocol broker that runs here) lets us test:
- TLS: Tansu cannot serve it (its --cert/--key options are mutually exclusive), so a TLS proxy
  fronts it; our clients do real TLS with certificate verification against our own CA.
- SASL/SCRAM-SHA-512: Tansu enforces it with --authentication, but a user cannot be created on
  an authenticating memory broker (creating one itself needs authentication). So we test that
  our client performs the SCRAM exchange, is refused, says why, and never leaks the password.
  A successful SCRAM login is untested here; docker-compose/Helm users run it on Apache Kafka.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
import yaml

from alertfeat.errors import KafkaUnavailable
from alertfeat.history import HistorySource, RedisHistory
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import LocalKafka, LocalRedis, free_port
from alertfeat.subscribe import enriched_alerts
from tests.helpers import drain, encode_alert, produce_all, readyz, sample_alerts
from tests.test_history import _batch
from tests.tls import TlsProxy, make_certificates

SECRET = "s3cret-Pa55word"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    found = make_certificates(tmp_path_factory.mktemp("tls"))
    if found is None:
        pytest.skip("openssl is not installed")
    return found


def test_service_runs_over_kafka_tls(certs, make_settings, service):
    proxy_port = free_port()
    with LocalKafka(advertised_port=proxy_port) as broker, TlsProxy(certs, proxy_port, broker.port):
        settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{proxy_port}", kafka_security_protocol="SSL",
                                 kafka_ssl_ca_location=str(certs.ca))
        config = settings.kafka_producer()
        assert config["security.protocol"] == "SSL"
        ensure_topics(settings.kafka_common(), {settings.input_topic: 1})
        from confluent_kafka import Producer

        producer = Producer(config)
        samples = sample_alerts()
        for sid, record in samples.items():
            producer.produce(settings.input_topic, encode_alert(record, sid))
        assert producer.flush(30) == 0
        with service(settings):
            got = list(enriched_alerts(settings, max_messages=len(samples), idle_timeout_s=30))
        assert len(got) == len(samples)


def test_kafka_tls_with_an_untrusted_ca_fails_clearly(certs, tmp_path, make_settings):
    other = make_certificates(tmp_path)  # a different CA
    proxy_port = free_port()
    with LocalKafka(advertised_port=proxy_port) as broker, TlsProxy(certs, proxy_port, broker.port):
        settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{proxy_port}", kafka_security_protocol="SSL",
                                 kafka_ssl_ca_location=str(other.ca))
        with pytest.raises(KafkaUnavailable, match="(?i)ssl|certificate"):
            ensure_topics(settings.kafka_common(), {"x": 1}, timeout_s=5)


def test_scram_is_attempted_refused_and_the_password_never_logged(make_settings, caplog, capfd):
    with LocalKafka(extra_args=["--authentication"], check_ready=False) as broker:
        settings = make_settings(kafka_bootstrap_servers=broker.bootstrap, kafka_security_protocol="SASL_PLAINTEXT",
                                 kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="broker-x",
                                 kafka_sasl_password=SECRET)
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("alertfeat").info("settings: %s", settings)
            with pytest.raises(KafkaUnavailable, match="(?i)SASL|SCRAM|authentication") as err:
                ensure_topics(settings.kafka_common(), {"x": 1}, timeout_s=5)
    out, errors = capfd.readouterr()
    for text in (caplog.text, out, errors, str(err.value), repr(settings)):
        assert SECRET not in text
    assert "broker-x" in caplog.text  # the settings were logged, with the password masked


def test_redis_acl_user(redis_url):
    password = "acl-" + SECRET
    server = LocalRedis()
    server._url = f"redis://alertfeat:{password}@127.0.0.1:{server.port}/0"
    server.extra_args = ["--user", "default", "off", "--user", "alertfeat", "on", f">{password}", "~*", "+@all"]
    with server:
        good = RedisHistory.from_url(server.url, "acl:", 365.0, 400.0, 2.0)
        _, source = good.merge(_batch([(1, 60000.0, [(1, 60000.0)])]))
        assert source.tolist() == [HistorySource.REDIS_PARTIAL]
        wrong = RedisHistory.from_url(f"redis://alertfeat:wrong@127.0.0.1:{server.port}/0", "acl:", 365.0, 400.0, 2.0)
        _, source = wrong.merge(_batch([(1, 60000.0, [(1, 60000.0)])]))
        assert source.tolist() == [HistorySource.ALERT]  # refused: degraded, not crashed


def test_redis_over_tls(certs):
    server = LocalRedis(ssl_ca_certs=str(certs.ca))
    server._url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={certs.ca}"
    server.extra_args = ["--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(certs.cert),
                         "--tls-key-file", str(certs.key), "--tls-ca-cert-file", str(certs.ca),
                         "--tls-auth-clients", "no"]
    with server:
        store = RedisHistory.from_url(server.url, "tls:", 365.0, 400.0, 2.0)
        lc, source = store.merge(_batch([(2, 60000.0, [(5, 60000.0)])]))
        lc, source = store.merge(_batch([(2, 60010.0, [(6, 60010.0)])]))
        assert source.tolist() == [HistorySource.REDIS_PARTIAL] and np.array_equal(lc.source_id, [5, 6])
        plain = RedisHistory.from_url(f"redis://127.0.0.1:{server.port}/0", "tls:", 365.0, 400.0, 1.0)
        _, source = plain.merge(_batch([(2, 60020.0, [(7, 60020.0)])]))
        assert source.tolist() == [HistorySource.ALERT]  # a plain client gets nothing from a TLS port


def test_secrets_from_files(tmp_path, monkeypatch):
    from alertfeat.config import load_settings

    (tmp_path / "ALERTFEAT_KAFKA_SASL_PASSWORD").write_text(SECRET + "\n")
    (tmp_path / "ALERTFEAT_REDIS_URL").write_text(f"redis://u:{SECRET}@redis:6379/0")
    monkeypatch.setenv("ALERTFEAT_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("ALERTFEAT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    settings = load_settings()
    assert settings.kafka_common()["sasl.password"] == SECRET
    assert settings.redis_url.get_secret_value().endswith("@redis:6379/0")
    assert SECRET not in repr(settings) and SECRET not in str(settings.redacted())


@pytest.mark.parametrize("redis_form, workers", [("userinfo in a secrets file", 1), ("query parameters in env", 2)])
def test_marker_secrets_from_every_input_path_reach_no_output(redis_form, workers, make_settings, kafka, tmp_path):
    """Unique markers go in through every way a credential can: environment, secrets directory,
    YAML, URL userinfo and query parameters, librdkafka dicts. The real service runs on them
    (Redis really authenticates with them), logging at DEBUG, through a Redis outage and a
    poison message; then its output, /metrics, /healthz, /readyz and the dead letters are searched."""
    tag = uuid.uuid4().hex[:8]
    mark = {name: f"MARK{tag}{name}" for name in (
        "envsasl", "envrdk", "envoauth", "envoauthcfg", "yamlrdk", "yamlkeystore", "yamlpem", "redisuser", "redispw")}
    acl = ["--user", "default", "off", "--user", mark["redisuser"], "on", f">{mark['redispw']}", "~*", "+@all"]
    server = LocalRedis(extra_args=acl)
    if redis_form.startswith("userinfo"):
        redis_url = f"redis://{mark['redisuser']}:{mark['redispw']}@127.0.0.1:{server.port}/0"
    else:
        redis_url = f"redis://127.0.0.1:{server.port}/0?username={mark['redisuser']}&password={mark['redispw']}"
    server._url = redis_url  # how its readiness check logs in
    with server:
        port = free_port()
        settings = make_settings(metrics_port=port, xmatch_catalogs=[], xmatch_bright_star_catalog=None,
                                 log_level="DEBUG", readiness_probe_interval_s=0.5)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")} | settings.to_env()
        for name in ("ALERTFEAT_REDIS_URL", "ALERTFEAT_LIBRDKAFKA", "ALERTFEAT_LIBRDKAFKA_PRODUCER"):
            env.pop(name, None)
        env |= {"ALERTFEAT_KAFKA_SASL_PASSWORD": mark["envsasl"],
                "ALERTFEAT_LIBRDKAFKA": json.dumps({"ssl.key.password": mark["envrdk"],
                                                    "sasl.oauthbearer.client.secret": mark["envoauth"],
                                                    "sasl.oauthbearer.config": f"principal=x secret={mark['envoauthcfg']}"})}
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        if redis_form.startswith("userinfo"):
            (secrets / "ALERTFEAT_REDIS_URL").write_text(redis_url + "\n")
        else:
            env["ALERTFEAT_REDIS_URL"] = redis_url
        env["ALERTFEAT_SECRETS_DIR"] = str(secrets)
        config = tmp_path / "alertfeat.yaml"
        config.write_text(yaml.safe_dump({"librdkafka_producer": {
            "sasl.password": mark["yamlrdk"], "ssl.keystore.password": mark["yamlkeystore"],
            "ssl.key.pem": mark["yamlpem"]}}))
        env["ALERTFEAT_CONFIG"] = str(config)

        alert = encode_alert(sample_alerts()[max(sample_alerts())], max(sample_alerts()))
        produce_all(kafka.bootstrap, settings.input_topic, [alert] * 20 + [b"\x00\x00\x00\x04\x4d garbage"],
                    partitions=workers)
        outputs = []
        log_path = tmp_path / "run.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "alertfeat.cli", "run", "--workers", str(workers)],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            dead = drain(kafka.bootstrap, settings.dlq_topic, 1, timeout_s=120)
            enriched = drain(kafka.bootstrap, settings.enriched_topic, 20, timeout_s=60)
            deadline = time.monotonic() + 30
            while readyz(port)[0] != 200:  # Redis accepted the credentials
                assert time.monotonic() < deadline, readyz(port)
                time.sleep(0.1)
            server.stop()  # errors while the secret is in use
            produce_all(kafka.bootstrap, settings.input_topic, [alert] * 5)
            enriched += drain(kafka.bootstrap, settings.enriched_topic, 25, timeout_s=60)
            deadline = time.monotonic() + 30  # the probe needs a few failed PINGs (hysteresis) to say so
            while not any("Redis unreachable" in reason for reason in readyz(port)[1]):
                assert time.monotonic() < deadline, readyz(port)
                time.sleep(0.2)
            for path in ("/metrics", "/healthz", "/readyz"):
                try:
                    outputs.append(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read())
                except urllib.error.HTTPError as err:
                    outputs.append(err.read())
            server.start()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(90)
    log_text = log_path.read_text(errors="replace")
    assert code == 0 and len(dead) == 1 and len(enriched) >= 25, log_text[-3000:]
    assert "Redis unreachable" in outputs[2].decode()  # the outage was seen...
    assert "**********" in log_text and "settings:" in log_text  # ...and the settings were logged, masked
    outputs += [log_text.encode()]
    outputs += [b"".join(k.encode() + (v or b"") for k, v in (m.headers() or [])) for m in dead + enriched]
    outputs += [m.value() for m in dead]
    for name, secret in mark.items():
        leaks = [i for i, text in enumerate(outputs) if secret.encode() in text]
        assert not leaks, f"{name} leaked into output {leaks}"
