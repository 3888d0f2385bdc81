from __future__ import annotations

import pytest

from alertfeat.config import load_settings
from alertfeat.errors import ConfigError


def test_defaults_match_the_documented_topics():
    s = load_settings()
    assert (s.input_topic, s.enriched_topic, s.xmatch_topic, s.dlq_topic) == (
        "alerts", "alerts.enriched", "alerts.xmatch", "alerts.dlq")


def test_environment_variables(monkeypatch):
    env = {
        "ALERTFEAT_KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "ALERTFEAT_GROUP_ID": "g",
        "ALERTFEAT_INPUT_TOPIC": "in",
        "ALERTFEAT_ENRICHED_TOPIC": "out",
        "ALERTFEAT_XMATCH_TOPIC": "xm",
        "ALERTFEAT_DLQ_TOPIC": "dead",
        "ALERTFEAT_REDIS_URL": "redis://r:6379/1",
        "ALERTFEAT_METRICS_PORT": "9999",
        "ALERTFEAT_LIBRDKAFKA": '{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}',
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.kafka_bootstrap_servers == "k1:9092,k2:9092" and s.group_id == "g"
    assert (s.input_topic, s.enriched_topic, s.xmatch_topic, s.dlq_topic) == ("in", "out", "xm", "dead")
    assert s.redis_url.get_secret_value() == "redis://r:6379/1" and s.metrics_port == 9999
    consumer = s.kafka_consumer()
    assert consumer["security.protocol"] == "SASL_SSL" and consumer["group.id"] == "g"
    assert consumer["enable.auto.commit"] is False
    assert s.kafka_producer()["sasl.mechanism"] == "SCRAM-SHA-512"


def test_yaml_file_and_env_priority(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("group_id: from-file\nbatch_size: 77\nlibrdkafka:\n  client.id: x\n")
    monkeypatch.setenv("ALERTFEAT_BATCH_SIZE", "88")
    s = load_settings(cfg)
    assert s.group_id == "from-file" and s.batch_size == 88 and s.librdkafka == {"client.id": "x"}
    monkeypatch.setenv("ALERTFEAT_CONFIG", str(cfg))
    assert load_settings().group_id == "from-file"


@pytest.mark.parametrize("env, field", [
    ({"ALERTFEAT_METRICS_PORT": "70000"}, "metrics_port"),
    ({"ALERTFEAT_BATCH_SIZE": "many"}, "batch_size"),
    ({"ALERTFEAT_INPUT_TOPIC": "bad topic!"}, "input_topic"),
    ({"ALERTFEAT_REDIS_URL": "http://x"}, "redis_url"),
    ({"ALERTFEAT_LOG_LEVEL": "LOUD"}, "log_level"),
    ({"ALERTFEAT_BATCH_SIZ": "5"}, "ALERTFEAT_BATCH_SIZ"),
])
def test_bad_values_fail_naming_the_field(monkeypatch, env, field):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=field):
        load_settings()


def test_bad_yaml_key_names_the_field(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_sise: 5\n")
    with pytest.raises(ConfigError, match="batch_sise"):
        load_settings(cfg)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("/nonexistent.yaml")


def test_secrets_are_masked_when_printed(monkeypatch):
    monkeypatch.setenv("ALERTFEAT_REDIS_URL", "redis://user:hunter2@r:6379/0")
    monkeypatch.setenv("ALERTFEAT_LIBRDKAFKA", '{"sasl.password": "hunter2", "sasl.username": "u"}')
    s = load_settings()
    text = repr(s) + str(s.redacted())
    assert "hunter2" not in text
    assert s.redacted()["librdkafka"]["sasl.username"] == "u"


@pytest.mark.parametrize("field, value, kept", [
    ("redis_url", "redis://alice:M1@r:6379/0", "@r:6379/0"),
    ("redis_url", "redis://:M1@r:6379/0", "@r:6379/0"),
    ("redis_url", "redis://r:6379/0?username=M1&password=M2&socket_timeout=2", "socket_timeout=2"),
    ("redis_url", "rediss://r:6380/0?ssl_ca_certs=/ca.pem&token=M1", "ssl_ca_certs=/ca.pem"),
    ("redis_url", "unix:///run/redis.sock?db=1&password=M1", "db=1"),
    ("schema_registry_url", "https://M1:M2@registry:8081/?api_key=M3", "registry:8081"),
    ("librdkafka", {"sasl.password": "M1", "ssl.key.password": "M2", "ssl.keystore.password": "M3",
                    "sasl.oauthbearer.client.secret": "M4", "sasl.oauthbearer.config": "principal=a secret=M5",
                    "ssl.key.pem": "M6", "sasl.oauthbearer.token.endpoint.url": "https://u:M7@idp/token",
                    "client.id": "kept"}, "kept"),
    ("librdkafka_consumer", {"ssl.keystore.password": "M1", "sasl.oauthbearer.extensions": "k=M2"}, "keystore"),
])
def test_every_credential_form_is_masked(field, value, kept):
    s = load_settings(**{field: value})
    text = repr(s) + str(s.redacted())
    assert "M1" not in text and "M2" not in text and not any(f"M{i}" in text for i in range(3, 8))
    assert kept in str(s.redacted()[field]) and "**********" in str(s.redacted()[field])


def test_metrics_host_defaults_to_every_interface_for_containers(monkeypatch):
    assert load_settings().metrics_host == "0.0.0.0"
    monkeypatch.setenv("ALERTFEAT_METRICS_HOST", "127.0.0.1")
    assert load_settings().metrics_host == "127.0.0.1"


def test_redis_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("ALERTFEAT_REDIS_URL", "")
    assert load_settings().redis_url is None
