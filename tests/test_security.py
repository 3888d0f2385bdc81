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

import logging

import numpy as np
import pytest

from alertfeat.errors import KafkaUnavailable
from alertfeat.history import HistorySource, RedisHistory
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import LocalKafka, LocalRedis, free_port
from alertfeat.subscribe import enriched_alerts
from tests.helpers import encode_alert, sample_alerts
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
