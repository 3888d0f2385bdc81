"""Kafka security on Apache Kafka itself: broker TLS (no proxy), SASL_SSL with SCRAM-SHA-512 for a
user created through the admin API, a wrong password, and an ACL that denies the output topic.

One node serves two client listeners: SASL_SSL (SCRAM-SHA-512) and SSL. The StandardAuthorizer is
on; `admin` (written into the log dir at format time, as `kafka-storage format --add-scram` does)
and ANONYMOUS (the broker-internal plaintext listener and the SSL listener without client
certificates) are super users.
"""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)

from alertfeat.benchmarks._service import metric
from alertfeat.errors import KafkaUnavailable
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import free_port
from alertfeat.subscribe import enriched_alerts
from tests.helpers import encode_alert, sample_alerts
from tests.kafka.broker import KafkaNode
from tests.kafka_probe import id_counts
from tests.service_process import ServiceProcess
from tests.tls import make_certificates

ADMIN_PASSWORD = "admin-Pa55-for-tests"
USER, PASSWORD = "alertfeat", "s3cret-SCRAM-Pa55word"


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory, kafka):
    if kafka.kind != "apache-kafka":
        pytest.skip(f"needs Apache Kafka; the session runs on {kafka.kind}")
    directory = tmp_path_factory.mktemp("ktls")
    certs = make_certificates(directory)
    if certs is None:
        pytest.skip("openssl is not installed")
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(certs.key.read_text() + certs.cert.read_text())
    sasl_port, ssl_port = free_port(), free_port()
    node = KafkaNode(
        listeners={"SASL_SSL": ("SASL_SSL", sasl_port), "SSL": ("SSL", ssl_port)},
        scram={"admin": ADMIN_PASSWORD},
        properties={
            "ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore),
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin;User:ANONYMOUS",
        })
    with node:
        admin = AdminClient(_sasl(node, sasl_port, certs, "admin", ADMIN_PASSWORD))
        # The service's user, created through the admin API while authentication is on.
        futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), PASSWORD.encode())])
        for f in futures.values():
            f.result(30)
        node.certs, node.sasl_port, node.ssl_port, node.admin = certs, sasl_port, ssl_port, admin
        yield node


def _sasl(node, port, certs, user, password) -> dict:
    return {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password,
            "ssl.ca.location": str(certs.ca)}


def _grant_service(admin: AdminClient, settings, deny_topic: str | None = None) -> AclBinding | None:
    """What an operator grants the service: its topics and groups; optionally a DENY of writes to
    one topic, returned as a filter to delete it with."""
    suffix = settings.group_id.removeprefix("g-")
    principal = f"User:{USER}"
    bindings = [AclBinding(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, principal, "*", op,
                           AclPermissionType.ALLOW)
                for t in (settings.input_topic, settings.enriched_topic, settings.xmatch_topic, settings.dlq_topic)
                for op in (AclOperation.ALL,)]  # read, write, describe, create
    bindings.append(AclBinding(ResourceType.GROUP, f"g-{suffix}", ResourcePatternType.LITERAL, principal, "*",
                               AclOperation.ALL, AclPermissionType.ALLOW))
    bindings.append(AclBinding(ResourceType.TRANSACTIONAL_ID, settings.transactional_id_prefix,
                               ResourcePatternType.PREFIXED, principal, "*", AclOperation.ALL,
                               AclPermissionType.ALLOW))  # exactly-once mode
    bindings.append(AclBinding(ResourceType.GROUP, "alertfeat-subscribe-", ResourcePatternType.PREFIXED, principal,
                               "*", AclOperation.READ, AclPermissionType.ALLOW))  # `alertfeat subscribe`
    deny = AclBinding(ResourceType.TOPIC, deny_topic, ResourcePatternType.LITERAL, principal, "*",
                      AclOperation.WRITE, AclPermissionType.DENY) if deny_topic else None
    for f in admin.create_acls(bindings + ([deny] if deny else [])).values():
        f.result(30)
    time.sleep(1)  # ACLs reach the broker's authorizer through the metadata log
    return deny


def _produce_samples(node, settings) -> int:
    """As the super user, over SASL_SSL: the input topic and the bundled sample alerts."""
    config = _sasl(node, node.sasl_port, node.certs, "admin", ADMIN_PASSWORD)
    ensure_topics(config, {settings.input_topic: 1})
    producer = Producer(config)
    samples = sample_alerts()
    for sid, record in samples.items():
        producer.produce(settings.input_topic, encode_alert(record, sid))
    assert producer.flush(30) == 0
    return len(samples)


def test_scram_sha_512_login_with_a_user_created_through_the_admin_api(secure_kafka, make_settings, service):
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{secure_kafka.sasl_port}",
                             kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                             kafka_sasl_username=USER, kafka_sasl_password=PASSWORD,
                             kafka_ssl_ca_location=str(secure_kafka.certs.ca))
    _grant_service(secure_kafka.admin, settings)
    n = _produce_samples(secure_kafka, settings)
    with service(settings):
        got = list(enriched_alerts(settings, max_messages=n, idle_timeout_s=30))
    assert len(got) == n


def test_broker_tls_without_a_proxy(secure_kafka, make_settings, service):
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{secure_kafka.ssl_port}",
                             kafka_security_protocol="SSL", kafka_ssl_ca_location=str(secure_kafka.certs.ca))
    n = _produce_samples(secure_kafka, settings)
    with service(settings):
        got = list(enriched_alerts(settings, max_messages=n, idle_timeout_s=30))
    assert len(got) == n


def test_wrong_password_fails_at_start_clearly_and_never_logs_it(secure_kafka, make_settings, tmp_path, caplog,
                                                                   capfd):
    wrong = "wr0ng-" + PASSWORD
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{secure_kafka.sasl_port}",
                             kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                             kafka_sasl_username=USER, kafka_sasl_password=wrong,
                             kafka_ssl_ca_location=str(secure_kafka.certs.ca))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(KafkaUnavailable, match="(?i)authentication|SASL") as err:
            ensure_topics(settings.kafka_common(), {"x": 1}, timeout_s=10)
    with ServiceProcess(settings, tmp_path / "service.log") as svc:
        code = svc.proc.wait(90)
    log_text = svc.log()
    out, errors = capfd.readouterr()
    assert code == 3, log_text[-3000:]
    assert "authentication" in log_text.lower() and USER in log_text, log_text[-3000:]
    for text in (log_text, caplog.text, out, errors, str(err.value)):
        assert wrong not in text and PASSWORD not in text


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_acl_denying_the_output_topic_gives_a_named_error_not_a_crash_loop(delivery, secure_kafka, make_settings,
                                                                           tmp_path):
    """The service stays up and names the refused topic, commits nothing while refused, and
    enriches everything once the operator lifts the DENY. In exactly-once mode each refusal
    aborts the transaction, and the batch is rewound and processed again: a read_committed
    reader sees every alert once."""
    settings = make_settings(delivery=delivery, kafka_bootstrap_servers=f"127.0.0.1:{secure_kafka.sasl_port}",
                             kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                             kafka_sasl_username=USER, kafka_sasl_password=PASSWORD,
                             kafka_ssl_ca_location=str(secure_kafka.certs.ca), metrics_port=free_port())
    deny = _grant_service(secure_kafka.admin, settings, deny_topic=settings.enriched_topic)
    n = _produce_samples(secure_kafka, settings)
    with ServiceProcess(settings, tmp_path / "service.log") as svc:
        deadline = time.monotonic() + 60
        while "TOPIC_AUTHORIZATION_FAILED" not in svc.log():
            assert svc.alive() and time.monotonic() < deadline, svc.log()[-3000:]
            time.sleep(0.2)
        time.sleep(5)  # a few retries later: still up, still nothing committed
        assert svc.alive(), svc.log()[-3000:]
        assert metric(settings.metrics_port, "alertfeat_consumed_total") == 0
        lift = AclBindingFilter(deny.restype, deny.name, deny.resource_pattern_type, deny.principal, deny.host,
                                deny.operation, deny.permission_type)
        for f in secure_kafka.admin.delete_acls([lift]).values():
            f.result(30)
        got = id_counts(secure_kafka.internal_bootstrap, settings.enriched_topic, n, "read_committed",
                        timeout_s=60, settle_s=2, value_ids=bytes)
        assert svc.alive(), svc.log()[-3000:]
    log_text = svc.log()
    refusals = [line for line in log_text.splitlines()
                if "TOPIC_AUTHORIZATION_FAILED" in line and "ERROR alertfeat.worker" in line]
    print(f"\nACL denial ({delivery}): {len(refusals)} named refusals logged, then {sum(got.values())} of {n} "
          f"enriched ({len(got)} distinct); first: {refusals[0]}")
    assert len(got) == n and sum(got.values()) == n
    assert "grant" in refusals[0]
    if delivery == "at-least-once":  # (a transaction's refusal does not say which of its topics)
        assert settings.enriched_topic in refusals[0]
    assert "Traceback" not in log_text and "consuming" in log_text
    assert log_text.count("consuming ") == 1  # one process start: no restart loop
