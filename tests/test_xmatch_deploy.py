"""HATS catalogs in deployment: the chart mounts a read-only PVC, compose a read-only volume, and
the per-catalog settings (xmatch_hats) are validated at start."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alertfeat.config import load_settings
from alertfeat.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "alertfeat"


def _deployment(values: dict) -> dict:
    helm = pytest.importorskip("helm_python")
    manifests = helm.Chart.load(CHART).render(values, name="af", namespace="astro")
    docs = [d for path, text in manifests.items() if not path.endswith(".txt") for d in yaml.safe_load_all(text) if d]
    return next(d for d in docs if d["kind"] == "Deployment")


def test_chart_mounts_the_catalog_claim_read_only():
    values = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())
    pod = _deployment(values)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "catalogs")
    assert volume["persistentVolumeClaim"] == {"claimName": "alertfeat-hats-catalogs", "readOnly": True}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "catalogs")
    assert mount == {"name": "catalogs", "mountPath": "/catalogs", "readOnly": True}
    assert values["config"]["xmatch_hats"]["ps1"]["path"].startswith(mount["mountPath"] + "/")
    defaults = _deployment(None)["spec"]["template"]["spec"]
    assert all(v["name"] != "catalogs" for v in defaults["volumes"])


def test_compose_mounts_the_catalog_volume_read_only():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "hats-catalogs:/catalogs:ro" in compose["services"]["alertfeat"]["volumes"]
    assert "hats-catalogs" in compose["volumes"]


def test_hats_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("ALERTFEAT_XMATCH_CATALOGS", "gaia,ps1")
    monkeypatch.setenv("ALERTFEAT_XMATCH_HATS__PS1__PATH", "/catalogs/ps1")
    monkeypatch.setenv("ALERTFEAT_XMATCH_HATS__PS1__ID", "objID")
    monkeypatch.setenv("ALERTFEAT_XMATCH_HATS__PS1__COLUMNS", '["gMeanPSFMag"]')
    monkeypatch.setenv("ALERTFEAT_XMATCH_HATS__PS1__CACHE_MB", "64")
    hats = load_settings().xmatch_hats["ps1"]
    assert (hats.path, hats.id, hats.columns, hats.cache_mb) == ("/catalogs/ps1", "objID", ["gMeanPSFMag"], 64.0)
    monkeypatch.setenv("ALERTFEAT_XMATCH_HATS__PS1__PMRA", "pmra")
    with pytest.raises(ConfigError, match="xmatch_hats.ps1.*both pmra and pmdec"):
        load_settings()
    monkeypatch.delenv("ALERTFEAT_XMATCH_HATS__PS1__PMRA")
    monkeypatch.setenv("ALERTFEAT_XMATCH_HATS__PS1__CACHE_MB", "0")
    with pytest.raises(ConfigError, match="cache_mb"):
        load_settings()
    monkeypatch.setenv("ALERTFEAT_XMATCH_HATS__PS1__CACHE_MB", "64")
    monkeypatch.setenv("ALERTFEAT_XMATCH_CATALOGS", "gaia")
    with pytest.raises(ConfigError, match="xmatch_hats names ps1, not in xmatch_catalogs"):
        load_settings()
