"""The `MIGRATION_*` contract: every setting, its default, and the one-line error for a bad value.

Built once by `cli.py` and passed down; no other module reads `MIGRATION_*` variables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import ByteSize, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from supervisor.errors import ConfigError
from supervisor.redact import redact_text

ENV_PREFIX = "MIGRATION_"
URL_FIELDS = ("new_redis_url", "old_redis_url")
FILE_SUFFIX = "_FILE"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_SCHEMES = ("redis", "rediss", "unix")
_SECRET_FILE_MAX_CHARS = 64 * 1024


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return f"{ENV_PREFIX}{field.upper()}"


def parse_weight(raw: object) -> float:
    """A weight as a float in [0, 1]: `0.3`, `1`, or a percentage such as `30%`."""
    if isinstance(raw, bool):
        raise ValueError("is not a number")
    text = str(raw).strip()
    percent = text.endswith("%")
    try:
        value = float(text[:-1] if percent else text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if percent:
        value /= 100
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{text!r} is out of range")
    return value


def check_redis_url(url: str) -> str:
    """Rejects what redis-py could not connect to, without ever echoing the URL (it may hold a secret)."""
    from urllib.parse import urlsplit

    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("is not a valid URL (bad port or brackets)") from None
    if parts.scheme not in _URL_SCHEMES:
        raise ValueError("has an unsupported scheme")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("has no socket path")
        return url
    if not parts.hostname:
        raise ValueError("has no host")
    if port == 0:
        raise ValueError("has port 0")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ValueError("has a database path that is not a number")
    return url


def _split_names(raw: object) -> list[str]:
    names = [n.strip() for n in str(raw).split(",") if n.strip()] if isinstance(raw, str) else raw
    if not isinstance(names, list):
        raise ValueError("is not a comma-separated list of names")
    if not names:  # a worker without its URL variable would quietly use its default Redis
        raise ValueError("names no variable")
    for name in names:
        if not _ENV_NAME.match(str(name)):
            raise ValueError(f"{name!r} is not a valid environment variable name")
    return [str(n) for n in names]


class _FileVariableSource(EnvSettingsSource):
    """`MIGRATION_X_FILE` holds a path whose content is the value of `MIGRATION_X` (Docker convention)."""

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field in URL_FIELDS:
            name = env_name(field)
            path = self._lookup(name + FILE_SUFFIX)
            if path is None:
                continue
            if self._lookup(name) is not None:
                raise ConfigError(
                    f"{name}{FILE_SUFFIX}: set together with {name}; set only one of them"
                )
            values[field] = _read_secret_file(name + FILE_SUFFIX, path)
        return values

    def _lookup(self, name: str) -> str | None:
        return self.env_vars.get(name.lower())

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False


def _read_secret_file(variable: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read(_SECRET_FILE_MAX_CHARS + 1)
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: the file is not UTF-8 text") from None
    if len(content) > _SECRET_FILE_MAX_CHARS:  # e.g. /dev/zero by mistake: never read forever
        raise ConfigError(f"{variable}: the file is longer than a URL can be")
    return content.removesuffix("\n")


class Settings(BaseSettings):
    """Flat, typed, validated once at start-up; field names are the variables without the prefix."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    new_redis_url: str = Field(description="the Redis everything converges to")
    old_redis_url: str | None = None
    new_weight: float = 0.5
    strategy: Literal["random", "sticky", "even"] = "random"
    seed: int | None = None
    rollout_id: str | None = None
    export_as: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["REDIS_URL"])
    producer_export_as: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["REDIS_PRODUCER_URL"]
    )
    prefer_new_when_drained: bool = True
    old_unreachable: Literal["new", "fail"] = "new"
    queue_layout: Literal["sidekiq", "celery", "rq", "none"] = "sidekiq"
    key_prefix: str = ""
    # Celery's broker settings that live in the app, not in Redis (see layouts/celery)
    celery_visibility_timeout: float = Field(default=3600.0, gt=0)
    celery_acks_late: bool = False
    log_format: Literal["auto", "json", "console"] = "auto"
    # supervise mode
    stop_timeout: float = Field(default=25.0, gt=0)
    max_restarts: int = Field(default=5, ge=0)
    restart_window: float = Field(default=300.0, gt=0)
    stats_interval: float = Field(default=60.0, gt=0)
    max_rss: ByteSize | None = None
    drain_check_interval: float = Field(default=30.0, gt=0)
    drain_confirmations: int = Field(default=3, ge=1)
    drain_jitter: float = Field(default=30.0, ge=0)
    auto_migrate: bool = False
    forward_to_group: bool = False

    @field_validator("new_weight", mode="before")
    @classmethod
    def _weight(cls, raw: object) -> float:
        return parse_weight(raw)

    @field_validator("new_redis_url", "old_redis_url")
    @classmethod
    def _url(cls, raw: str | None, info: ValidationInfo) -> str | None:
        if raw is not None and raw.strip():
            return check_redis_url(raw)
        if info.field_name == "new_redis_url":  # NEW is never optional: empty is not "unset"
            raise ValueError("is empty")
        return None

    @field_validator("export_as", "producer_export_as", mode="before")
    @classmethod
    def _names(cls, raw: object) -> list[str]:
        return _split_names(raw)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileVariableSource(settings_cls))

    @property
    def decides_by_coin(self) -> bool:
        """Weight 0 and 1 are explicit overrides: no toss and no look at OLD."""
        return 0 < self.new_weight < 1

    @property
    def drain_checks_on(self) -> bool:
        return self.decides_by_coin and self.prefer_new_when_drained and self.queue_layout != "none"


_ACCEPTED = {
    "new_redis_url": "a redis://, rediss:// or unix:// URL (or a path in {var}_FILE)",
    "old_redis_url": "a redis://, rediss:// or unix:// URL (or a path in {var}_FILE)",
    "new_weight": "a number in [0, 1] or a percentage such as 50%",
    "strategy": "random, sticky or even",
    "seed": "an integer",
    "export_as": "comma-separated environment variable names",
    "producer_export_as": "comma-separated environment variable names",
    "prefer_new_when_drained": "true or false",
    "old_unreachable": "new or fail",
    "queue_layout": "sidekiq, celery, rq or none",
    "celery_visibility_timeout": "a number of seconds above 0",
    "celery_acks_late": "true or false",
    "log_format": "auto, json or console",
    "max_rss": "a size in bytes such as 536870912 or 512MiB",
    "auto_migrate": "true or false",
    "forward_to_group": "true or false",
    "stop_timeout": "a number of seconds above 0",
    "restart_window": "a number of seconds above 0",
    "stats_interval": "a number of seconds above 0",
    "drain_check_interval": "a number of seconds above 0",
    "drain_jitter": "a number of seconds, 0 or more",
    "max_restarts": "a whole number, 0 or more",
    "drain_confirmations": "a whole number, 1 or more",
}


def _describe(error: Mapping[str, Any]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    variable = env_name(field)
    if error["type"] == "missing":
        problem = "is required"
    elif field in URL_FIELDS:
        # never echo a URL: it may carry a password
        problem = str(error.get("ctx", {}).get("error", "is not a valid URL"))
    elif error["type"] == "value_error":
        problem = str(error["ctx"]["error"])
    else:
        problem = f"{error['input']!r} is not valid" if "input" in error else error["msg"]
    accepted = _ACCEPTED.get(field, error["msg"].lower()).format(var=variable)
    return f"{variable}: {problem}; accepted: {accepted}"


def load_settings() -> Settings:
    """Reads and checks every setting from the environment, or raises ConfigError with one line."""
    try:
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(redact_text(_describe(exc.errors()[0]))) from None
    except SettingsError as exc:
        raise ConfigError(redact_text(f"{ENV_PREFIX}*: {exc}")) from None
    if settings.old_redis_url is None and settings.new_weight < 1:
        raise ConfigError(
            f"{env_name('old_redis_url')}: is required while {env_name('new_weight')} is below 1;"
            " accepted: the URL of the Redis being drained (or a path in its _FILE variable)"
        )
    return settings
