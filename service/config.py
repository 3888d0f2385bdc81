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
                               SettingsConfigDict, SettingsError, YamlConfigSettingsSource)

from .errors import ConfigError
from .redaction import mask_librdkafka, mask_url
from .xmatch_config import HatsCatalogSettings

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_CATALOG = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # a catalog name is also an Avro field name
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
    metrics_host: str = Field("0.0.0.0", min_length=1,
                              description="address of /metrics, /healthz, /readyz (all interfaces: a container's "
                                          "port; set 127.0.0.1 on a shared host)")
    readiness_probe_interval_s: float = Field(2.0, gt=0, le=300, description="how often Redis and Kafka are probed")
    readiness_failures: int = Field(3, ge=1, le=100, description="consecutive failed probes before not ready")
    readiness_successes: int = Field(2, ge=1, le=100, description="consecutive good probes before ready again")
    worker_max_restarts: int = Field(5, ge=0, le=1000,
                                     description="--workers: crashes tolerated within the window before giving up")
    worker_restart_window_s: float = Field(300.0, gt=0, description="--workers: the window for worker_max_restarts")
    log_repeat_interval_s: float = Field(60.0, ge=0, description="a repeated client error is logged once per "
                                                                   "interval with a count (0: every time)")
    kafka_connect_timeout_s: float = Field(10.0, gt=0, le=600, description="commands fail if no broker answers "
                                                                           "within this")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: Path = Field(default_factory=lambda: user_data_dir(),
                           description="catalogs and simulated alerts (default: the per-user data directory)")

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

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
        if value is None:
            return value
        url = value.get_secret_value()
        if not re.match(r"^(redis|rediss|unix)://", url):
            raise ValueError("must start with redis://, rediss:// or unix://")
        from redis.connection import parse_url

        try:
            parse_url(url)  # what redis-py will do at start: port, database and options
        except ValueError as exc:
            raise ValueError(f"{exc} (in {mask_url(url)})") from None
        return value

    @field_validator("librdkafka", "librdkafka_consumer", "librdkafka_producer", mode="before")
    @classmethod
    def _flat_librdkafka(cls, value: Any) -> Any:
        # One clear line instead of pydantic's four union-member errors per nested value.
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(item, (str, int, float, bool)):
                    raise ValueError(f"{key!r} must be a string, number or boolean, not {type(item).__name__}")
        return value

    @model_validator(mode="after")
    def _librdkafka_accepts(self) -> Settings:
        from .kafka_io import check_client_config

        for name in ("librdkafka", "librdkafka_consumer", "librdkafka_producer"):
            if not getattr(self, name):
                continue
            kind = "consumer" if name == "librdkafka_consumer" else "producer"
            full = self.kafka_consumer() if kind == "consumer" else self.kafka_producer()
            problem = check_client_config(kind, full, suspects=getattr(self, name))
            # Names and values are checked here; whether they fit together (e.g. SASL without a
            # user, a CA file that exists) is checked when the service starts, on this machine.
            if problem and "Failed to create" not in problem:
                raise ValueError(f"{name} (ALERTFEAT_{name.upper()}): {problem}")
        return self

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
            # Notice an input topic created after the service started within seconds, not after
            # librdkafka's default 300 s (docker-compose starts the service before the topic exists).
            "topic.metadata.refresh.interval.ms": 5000,
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
            dump[name] = mask_librdkafka(dump[name])
        if self.redis_url is not None:
            dump["redis_url"] = mask_url(self.redis_url.get_secret_value())
        if self.schema_registry_url is not None:
            dump["schema_registry_url"] = mask_url(self.schema_registry_url)
        return dump


def user_data_dir() -> Path:
    """Where catalogs and simulated alerts live unless data_dir is set: one place per user, so
    that running from another directory does not import the catalogs again."""
    from platformdirs import user_data_path

    return user_data_path("alertfeat", appauthor=False)


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
    yaml_keys = _yaml_keys(Path(config_file)) if config_file is not None else set()
    token = _yaml_file.set(Path(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, config_file, yaml_keys, set(overrides))) from None
    except SettingsError as exc:  # a source could not even be parsed (e.g. bad JSON in a variable)
        raise ConfigError(_unparsable(exc)) from None
    finally:
        _yaml_file.reset(token)


def with_overrides(settings: Settings, **updates: Any) -> Settings:
    """A validated copy of `settings` with some fields replaced (no sources are re-read)."""
    try:
        return Settings.model_validate({**settings.model_dump(), **updates})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def _yaml_keys(path: Path) -> set[str]:
    """The top-level keys of a YAML settings file; a syntax error is one line naming the file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"invalid configuration: {path}: YAML syntax error{where}: {problem}") from None
    except OSError as exc:
        raise ConfigError(f"invalid configuration: {path}: {exc.strerror}") from None
    if data is None:
        return set()
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration: {path}: expected a mapping of settings, "
                          f"found a {type(data).__name__}")
    return {str(k) for k in data}


def format_validation_error(exc: ValidationError, config_file: str | Path | None = None,
                            yaml_keys: set[str] = frozenset(), overridden: set[str] = frozenset()) -> str:
    """One line: every problem, each naming the field and where its value came from."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        top = str(err["loc"][0]) if err["loc"] else ""
        variable = f"ALERTFEAT_{top.upper()}"
        if not field:  # a model validator that names the field itself
            problems.append(msg)
        elif err["type"] == "extra_forbidden" and len(err["loc"]) == 1:  # unknown variables are caught before: a YAML key
            problems.append(f"{config_file or 'settings'}: unknown key {top!r}")
        else:
            if err["type"] == "extra_forbidden":  # a nested key, e.g. xmatch_hats.gaia.typo
                msg = "unknown field"
            if top in yaml_keys and variable not in os.environ and top not in overridden:
                problems.append(f"{field} (in {config_file}): {msg}")
            else:
                problems.append(f"{field} ({variable}): {msg}")
    return "invalid configuration: " + "; ".join(problems)


def _unparsable(exc: SettingsError) -> str:
    found = re.search(r'field "(\w+)" from source "(\w+)"', str(exc))
    if found is None:
        return f"invalid configuration: {exc}"
    field, source = found.groups()
    where = {"EnvSettingsSource": f"ALERTFEAT_{field.upper()}", "SecretsSettingsSource": "secrets file",
             "YamlConfigSettingsSource": "YAML file"}.get(source, source)
    cause = exc.__cause__
    # json's message gives a position, never the value (which may be a secret).
    detail = f"not valid JSON ({cause.msg} at column {cause.colno})" if hasattr(cause, "colno") else "cannot be parsed"
    return f"invalid configuration: {field} ({where}): {detail}"
