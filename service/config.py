"""Settings: one frozen pydantic-settings model, the only place that reads the environment.

Sources, highest priority first: explicit overrides, `ALERTFEAT_*` environment variables,
the YAML file given with `--config`, secret files in `ALERTFEAT_SECRETS_DIR`, then defaults.
"""

from __future__ import annotations

import contextvars
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from .errors import ConfigError

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SECRET_KEY = re.compile(r"password|secret|token|key\.pem|private", re.IGNORECASE)
LibrdkafkaValue = str | int | float | bool

# The YAML file for the Settings being built; a context variable so loading stays re-entrant.
_yaml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("_yaml_file", default=None)


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
    librdkafka: dict[str, LibrdkafkaValue] = Field(default_factory=dict, description="passed to every client")
    librdkafka_consumer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    librdkafka_producer: dict[str, LibrdkafkaValue] = Field(default_factory=dict)
    schema_registry_url: str | None = None

    # Batching
    batch_size: int = Field(1000, ge=1, le=100_000)
    batch_timeout_ms: int = Field(100, ge=1, le=60_000)

    # History
    redis_url: SecretStr | None = SecretStr("redis://localhost:6379/0")
    redis_key_prefix: str = "alertfeat:"
    redis_timeout_s: float = Field(2.0, gt=0)
    history_days: float = Field(365.0, gt=0)
    history_ttl_days: float = Field(400.0, gt=0)
    include_forced_sources: bool = False

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
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        sources.append(file_secret_settings)
        return tuple(sources)

    # librdkafka configuration dicts -------------------------------------------------

    def kafka_common(self) -> dict[str, LibrdkafkaValue]:
        # Idle connections that the broker closes are routine; librdkafka would log each one.
        return {"bootstrap.servers": self.kafka_bootstrap_servers, "log.connection.close": False, **self.librdkafka}

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
            **self.librdkafka_producer,
        }

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
_NON_FIELD_VARIABLES = {"ALERTFEAT_CONFIG"}


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
