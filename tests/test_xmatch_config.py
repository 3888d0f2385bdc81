"""The xmatch_* settings: defaults, environment forms, and clear errors."""

from __future__ import annotations

import pytest

from alertfeat.config import load_settings
from alertfeat.errors import ConfigError


def test_defaults():
    s = load_settings()
    assert s.xmatch_catalogs == ["gaia", "hipparcos"]
    assert s.xmatch_bright_star_catalog == "gaia"
    assert (s.xmatch_radius_arcsec, s.xmatch_max_matches) == (5.0, 5)


@pytest.mark.parametrize("value, want", [("gaia", ["gaia"]), (" gaia , hipparcos ", ["gaia", "hipparcos"]),
                                         ('["hipparcos", "gaia"]', ["hipparcos", "gaia"])])
def test_catalog_list_from_the_environment(monkeypatch, value, want):
    monkeypatch.setenv("ALERTFEAT_XMATCH_CATALOGS", value)
    assert load_settings().xmatch_catalogs == want


def test_no_catalogs(monkeypatch):
    monkeypatch.setenv("ALERTFEAT_XMATCH_CATALOGS", "")
    with pytest.raises(ConfigError, match="xmatch_bright_star_catalog 'gaia' is not in xmatch_catalogs"):
        load_settings()
    monkeypatch.setenv("ALERTFEAT_XMATCH_BRIGHT_STAR_CATALOG", "none")
    s = load_settings()
    assert s.xmatch_catalogs == [] and s.xmatch_bright_star_catalog is None


def test_per_catalog_radius(monkeypatch):
    monkeypatch.setenv("ALERTFEAT_XMATCH_CATALOG_RADIUS_ARCSEC__HIPPARCOS", "2.5")
    assert load_settings().xmatch_catalog_radius_arcsec == {"hipparcos": 2.5}
    monkeypatch.setenv("ALERTFEAT_XMATCH_CATALOG_RADIUS_ARCSEC__PS1", "2.5")
    with pytest.raises(ConfigError, match="ps1, not in xmatch_catalogs"):
        load_settings()


@pytest.mark.parametrize("field, value, fragment", [
    ("xmatch_catalogs", ["Gaia"], "must match"),
    ("xmatch_catalogs", ["gaia", "gaia"], "listed twice"),
    ("xmatch_radius_arcsec", 0, "greater than 0"),
    ("xmatch_max_matches", 0, "greater than or equal to 1"),
    ("xmatch_catalog_radius_arcsec", {"gaia": -1.0}, "radius of gaia"),
    ("xmatch_bright_star_radius_arcsec", 7200, "less than or equal to 3600"),
])
def test_bad_values_name_the_field(field, value, fragment):
    with pytest.raises(ConfigError) as info:
        load_settings(**{field: value})
    assert fragment in str(info.value)
