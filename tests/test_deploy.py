"""Deployment artefacts, checked with the real tools that run here: Helm's own engine (helm-python-sdk,
Helm v4 SDK), kubernetes-validate, the Compose-spec JSON schema (check-jsonschema) and hadolint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from alertfeat.config import load_settings
from alertfeat.metrics import Metrics

ROOT = Path(__file__).parent.parent
CHART = ROOT / "helm" / "alertfeat"
PRODUCTION = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())
KUBE_VERSION = "1.30"
# Custom resources kubernetes-validate has no schema for; checked structurally below.
CRDS = {"ServiceMonitor": "monitoring.coreos.com/v1", "ScaledObject": "keda.sh/v1alpha1"}


def _render(values: dict | None) -> list[dict]:
    manifests = helm.Chart.load(CHART).render(values, name="af", namespace="astro")
    docs = []
    for path, text in manifests.items():
        if not path.endswith(".txt"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


@pytest.mark.parametrize("values", [None, PRODUCTION], ids=["defaults", "production"])
def test_chart_lints_clean(values):
    report = helm.lint(CHART, values, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", [None, PRODUCTION], ids=["defaults", "production"])
def test_every_rendered_manifest_is_valid_kubernetes(values):
    docs = _render(values)
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        if doc["kind"] in CRDS:
            assert doc["apiVersion"] == CRDS[doc["kind"]] and doc["spec"]
            continue
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    assert {"Deployment", "ConfigMap", "Service", "PodDisruptionBudget"} <= kinds
    assert ("ScaledObject" in kinds) == (values is PRODUCTION)
    assert ("HorizontalPodAutoscaler" in kinds) == (values is None)


@pytest.mark.parametrize("values", [None, PRODUCTION], ids=["defaults", "production"])
def test_rendered_config_is_valid_alertfeat_settings(values, tmp_path, monkeypatch):
    for var in [v for v in __import__("os").environ if v.startswith("ALERTFEAT_")]:
        monkeypatch.delenv(var)
    config = next(d for d in _render(values) if d["kind"] == "ConfigMap")["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(config)
    settings = load_settings(path)
    assert settings.metrics_port == 9108
    if values is PRODUCTION:
        assert settings.delivery == "exactly-once" and settings.kafka_security_protocol == "SASL_SSL"
        assert settings.kafka_ssl_ca_location == "/etc/alertfeat/kafka-ca/ca.crt"
        assert "password" not in config and "redis_url" not in config


def test_pod_is_hardened_and_probed():
    deployment = next(d for d in _render(PRODUCTION) if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["name"] == "metrics"
    assert container["args"] == ["run", "--workers", "2"]
    # Secrets only by reference.
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"ALERTFEAT_KAFKA_SASL_USERNAME": "alertfeat-kafka-credentials",
                    "ALERTFEAT_KAFKA_SASL_PASSWORD": "alertfeat-kafka-credentials",
                    "ALERTFEAT_REDIS_URL": "alertfeat-redis-url"}
    assert pod["terminationGracePeriodSeconds"] > load_settings().shutdown_grace_s


def test_the_pod_accepts_connections_on_the_metrics_port_only():
    docs = _render(None)
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}] and rule["from"]
    config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["config.yaml"])
    assert config["metrics_host"] == "0.0.0.0"  # the kubelet and Prometheus come from outside the pod
    assert "NetworkPolicy" not in {d["kind"] for d in _render({"networkPolicy": {"enabled": False}})}


def test_values_match_their_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)
    chart = helm.Chart.load(CHART)
    chart.validate_schema(PRODUCTION)


@pytest.mark.parametrize("bad", [
    {"workers": 0},
    {"kafka": {"securityProtocol": "SASL_MAGIC"}},
    {"config": {"kafka_sasl_password": "in plain sight"}},
    {"securityContext": {"readOnlyRootFilesystem": False}},
    {"replicas": 3},
])
def test_schema_rejects_bad_values(bad):
    with pytest.raises(helm.HelmError):
        helm.Chart.load(CHART).validate_schema(bad)


def test_compose_file_is_valid_compose_spec():
    out = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                          str(ROOT / "docker-compose.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "redis", "alertfeat", "prometheus", "grafana", "replay", "subscriber"} <= set(services)
    for name in ("kafka", "redis", "prometheus"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["alertfeat"]["read_only"] and "container_name" not in services["alertfeat"]  # scalable
    assert services["replay"]["profiles"] == ["replay"]
    # The network boundary is the host: published ports bind loopback; alertfeat publishes none.
    published = [p for service in services.values() for p in service.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published), published
    assert "ports" not in services["alertfeat"]
    for mount in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        source = mount.split(":")[0]
        assert not source.startswith("./") or (ROOT / source).exists(), source


def test_dashboard_queries_use_metrics_that_exist():
    families = list(Metrics().registry.collect())
    names = {m.name for m in families} | {m.name + "_total" for m in families if m.type == "counter"}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "alertfeat.json").read_text())
    wanted = {"throughput", "latency", "lag", "dead-letter", "degraded", "stage"}
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    assert all(w in titles for w in wanted), titles
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for metric in re.findall(r"alertfeat_[a-z_]+", target["expr"]):
                base = re.sub(r"_(bucket|sum|count)$", "", metric)
                assert metric in names or base in names, metric


def test_dockerfile_passes_hadolint_and_is_production_shaped():
    out = subprocess.run([str(Path(sys.executable).parent / "hadolint"), str(ROOT / "Dockerfile")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2 and "python:3.11-slim" in text
    assert re.search(r"^USER 10001$", text, re.M)
    assert "HEALTHCHECK" in text and '"alertfeat", "run"' in text
    assert "NUMBA_CACHE_DIR=/opt/alertfeat/numba-cache" in text  # kernels compiled at build time
