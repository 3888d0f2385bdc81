"""Settings: one frozen pydantic-settings model, the only place that reads the environment.

Sources, highest priority first: explicit overrides, `ALERTFEAT_*` environment variables,
secret files in `$ALERTFEAT_SECRETS_DIR` (one file per setting, named like its variable, e.g.
ALERTFEAT_KAFKA_SASL_PASSWORD), the YAML file given with `--config`, then defaults.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (BaseSettings, NoDecode, PydanticBaseSettingsSource, SecretsSettingsSource,
                               SettingsConfigDict, YamlConfigSettingsSource)

from .errors import ConfigError
from .xmatch_config import HatsCatalogSettings

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_CATALOG = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # a catalog name is also an Avro field name
_SECRET_KEY = re.compile(r"password|secret|token|key\.pem|private", re.IGNORECASE)
LibrdkafkaValue = str | int | float | bool

# The YAML file for the Settings being built; a context variable so loading stays re-entrant.
_yaml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("_yaml_file", default=None)


# Room for what alertfeat appends to an alert (features, cross-match summary) and for headers.
OUTPUT_HEADROOM_BYTES = 1 << 20


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ALERTFEAT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    # Kafka
    kafka_bootstrap_servers: str = "localhost:9092"
    group_id: str = "alertfeat"
    input_topic: str = "alerts"
    enriched_topic: str = "alerts.enriched"
    xmatch_topic: str = "alerts.xmatch"
    dlq_topic: str = "alerts.dlq"
    create_topics: bool = Field(True, description="create missing output topics at start")
    output_partitions: int = Field(1, ge=1, le=10_000)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(None, description="CA bundle that signed the brokers' certificates")
    librdkafka: dict[str, LibrdkafkaValue] = Field(default_factory=dict, description="passed to every client")
    librdkafka_consumer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    librdkafka_producer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    schema_registry_url: str | None = None

    # Batching and delivery
    batch_size: int = Field(1000, ge=1, le=100_000)
    batch_timeout_ms: int = Field(100, ge=1, le=60_000)
    delivery: Literal["at-least-once", "exactly-once"] = "at-least-once"
    transactional_id_prefix: str = Field("alertfeat", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    shutdown_grace_s: float = Field(30.0, gt=0, description="SIGTERM: finish the batch within this, then exit")

    # Hostile input: anything over a cap goes to the dead-letter topic
    max_message_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="framed alert size cap")
    max_sources_per_alert: int = Field(20_000, ge=1, description="diaSource + prvDiaSources (+ forced) cap")

    # History
    redis_url: SecretStr | None = SecretStr("redis://localhost:6379/0")
    redis_cluster: bool = Field(False, description="redis_url names a node of a Redis Cluster")
    redis_key_prefix: str = "alertfeat:"
    redis_timeout_s: float = Field(2.0, gt=0)
    history_days: float = Field(365.0, gt=0)
    history_ttl_days: float = Field(400.0, gt=0)
    include_forced_sources: bool = False

    # Cross-match (schemas/xmatch.md)
    xmatch_catalogs: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["gaia", "hipparcos"],
        description="catalogs in <data_dir>/catalogs, in output order; gaia and hipparcos are imported on first use",
    )
    xmatch_radius_arcsec: float = Field(5.0, gt=0, le=3600, description="match radius of every catalog")
    xmatch_catalog_radius_arcsec: dict[str, float] = Field(default_factory=dict,
                                                           description="per-catalog radius, overrides the above")
    xmatch_max_matches: int = Field(5, ge=1, le=64, description="matches kept per alert and catalog, nearest first")
    xmatch_bright_star_catalog: str | None = Field("gaia", description="catalog for nearBrightStar; none turns it off")
    xmatch_bright_star_mag: float = Field(10.0, ge=-2, le=30, description="nearBrightStar: at least this bright")
    xmatch_bright_star_radius_arcsec: float = Field(30.0, gt=0, le=3600, description="nearBrightStar: within this")
    xmatch_hats: dict[str, HatsCatalogSettings] = Field(
        default_factory=dict, description="catalogs of xmatch_catalogs read in place from HATS, by name")

    # Operations
    metrics_port: int = Field(9108, ge=0, le=65535, description="0 turns the HTTP endpoint off")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: Path = Path("data")

    @field_validator("input_topic", "enriched_topic", "xmatch_topic", "dlq_topic")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        if not _TOPIC.match(value):
            raise ValueError("a Kafka topic name is 1-249 characters of [A-Za-z0-9._-]")
        return value

    @field_validator("xmatch_catalogs", mode="before")
    @classmethod
    def _catalog_list(cls, value: Any) -> Any:
        # From the environment: a JSON list or comma-separated names ("" means none).
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("not a JSON list of catalog names") from None
            return [name.strip() for name in text.split(",") if name.strip()]
        return value

    @field_validator("xmatch_catalogs")
    @classmethod
    def _valid_catalogs(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _CATALOG.match(name):
                raise ValueError(f"catalog name {name!r} must match {_CATALOG.pattern}")
        if len(set(value)) != len(value):
            raise ValueError("a catalog is listed twice")
        return value

    @field_validator("xmatch_catalog_radius_arcsec")
    @classmethod
    def _valid_radii(cls, value: dict[str, float]) -> dict[str, float]:
        for name, radius in value.items():
            if not 0 < radius <= 3600:
                raise ValueError(f"radius of {name} must be in (0, 3600] arcsec")
        return value

    @field_validator("xmatch_bright_star_catalog", mode="before")
    @classmethod
    def _empty_catalog_means_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
            return None
        return value

    @model_validator(mode="after")
    def _xmatch_consistent(self) -> Settings:
        unknown = sorted(set(self.xmatch_catalog_radius_arcsec) - set(self.xmatch_catalogs))
        if unknown:
            raise ValueError(f"xmatch_catalog_radius_arcsec names {', '.join(unknown)}, not in xmatch_catalogs")
        unknown = sorted(set(self.xmatch_hats) - set(self.xmatch_catalogs))
        if unknown:
            raise ValueError(f"xmatch_hats names {', '.join(unknown)}, not in xmatch_catalogs")
        if self.xmatch_bright_star_catalog is not None and self.xmatch_bright_star_catalog not in self.xmatch_catalogs:
            raise ValueError(f"xmatch_bright_star_catalog {self.xmatch_bright_star_catalog!r} is not in "
                             "xmatch_catalogs (add it there, or set it to none)")
        return self

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_means_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
            return None
        return value

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^(redis|rediss|unix)://", value.get_secret_value()):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _yaml_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get("ALERTFEAT_SECRETS_DIR")
        if secrets_dir:
            # One file per setting, named like its variable (e.g. a mounted Kubernetes Secret).
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)

    # librdkafka configuration dicts -------------------------------------------------

    def kafka_common(self) -> dict[str, LibrdkafkaValue]:
        # Idle connections that the broker closes are routine; librdkafka would log each one.
        common: dict[str, LibrdkafkaValue] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "log.connection.close": False,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            common["sasl.mechanism"] = self.kafka_sasl_mechanism
            common["sasl.username"] = self.kafka_sasl_username or ""
            common["sasl.password"] = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        if self.kafka_ssl_ca_location:
            common["ssl.ca.location"] = self.kafka_ssl_ca_location
        return {**common, **self.librdkafka}

    def kafka_consumer(self) -> dict[str, LibrdkafkaValue]:
        return {
            **self.kafka_common(),
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            **self.librdkafka_consumer,
        }

    def kafka_producer(self) -> dict[str, LibrdkafkaValue]:
        return {
            **self.kafka_common(),
            "enable.idempotence": True,
            "linger.ms": 5,
            # librdkafka's own default (1,000,000) refuses, by raising, an enriched alert whose
            # input was close to 1 MB; allow anything under the input cap plus the appended fields.
            "message.max.bytes": min(self.max_message_bytes + OUTPUT_HEADROOM_BYTES, 1_000_000_000),
            **self.librdkafka_producer,
        }

    def to_env(self) -> dict[str, str]:
        """ALERTFEAT_* variables that reproduce these settings in a child process."""
        env = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is None:
                if name == "schema_registry_url" or name.startswith("kafka_"):
                    continue  # None is their default
                value = "none"
            elif isinstance(value, (dict, list)):
                value = json.dumps(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"ALERTFEAT_{name.upper()}"] = str(value)
        return env

    def __repr_args__(self):
        # repr/str must never show a secret, wherever a Settings object gets logged.
        return list(self.redacted().items())

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict that is safe to log: secrets are masked."""
        dump = self.model_dump(mode="json")
        for name in ("librdkafka", "librdkafka_consumer", "librdkafka_producer"):
            dump[name] = {k: ("**********" if _SECRET_KEY.search(k) else v) for k, v in dump[name].items()}
        if self.redis_url is not None:
            dump["redis_url"] = _mask_url_password(self.redis_url.get_secret_value())
        return dump


def _mask_url_password(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1**********@", url)


# Variables with our prefix that are not settings fields.
_NON_FIELD_VARIABLES = {"ALERTFEAT_CONFIG", "ALERTFEAT_SECRETS_DIR"}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build and validate Settings; a bad value raises ConfigError naming the field.

    `config_file` defaults to $ALERTFEAT_CONFIG. An unknown ALERTFEAT_* variable is an
    error, so that a typo cannot silently leave a default in place.
    """
    fields = {name.upper() for name in Settings.model_fields}
    unknown = sorted(
        key for key in os.environ
        if key.startswith("ALERTFEAT_") and key not in _NON_FIELD_VARIABLES
        and key[len("ALERTFEAT_"):].split("__")[0] not in fields
    )
    if unknown:
        raise ConfigError(f"invalid configuration: unknown environment variable(s) {', '.join(unknown)}")
    config_file = config_file or os.environ.get("ALERTFEAT_CONFIG") or None
    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    token = _yaml_file.set(Path(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    finally:
        _yaml_file.reset(token)


def with_overrides(settings: Settings, **updates: Any) -> Settings:
    """A validated copy of `settings` with some fields replaced (no sources are re-read)."""
    try:
        return Settings.model_validate({**settings.model_dump(), **updates})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def format_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        env = "ALERTFEAT_" + str(err["loc"][0]).upper() if err["loc"] else ""
        lines.append(f"  {field} ({env}): {err['msg']}")
    return "\n".join(lines)
