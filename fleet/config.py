"""Configuration, read once from the environment into one settings object.

`Settings` declares every variable the app reads, with its type, default and
bounds (a pydantic model); `load_config` turns it into the Flask config keys the
rest of the code reads. Every setting has a default that gives the embedded setup
(a SQLite file under ``instance/``, no Redis). Bad values fail loudly at start-up,
naming the variable, rather than surfacing later as a confusing runtime error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

# The bind name of the autocommit engine (`db.engines[AUTOCOMMIT_BIND]`).
AUTOCOMMIT_BIND = "autocommit"
MEMORY_STORAGE_URI = "pulseboard-memory://"
# secrets.token_urlsafe(24) is 32 characters: anything shorter is guessable in time.
MIN_SECRET_LENGTH = 32
DEFAULT_SECRET_KEY = "dev-secret-key-change-me"
DEFAULT_ENROLLMENT_KEY = "dev-enrollment-key"
DEFAULT_ALERT_SCHEMES = (
    "mailto,mailtos,json,jsons,slack,msteams,discord,tgram,ntfy,ntfys,pover,webhook,webhooks"
)
CommandKind = Literal["reconnect", "restart_app", "reboot", "refresh_content", "screenshot"]
COMMAND_KIND_NAMES: tuple[str, ...] = get_args(CommandKind)
# Past a fifth, a late beat runs into the grace period rather than spreading a fleet out.
MAX_JITTER_PERCENT = 20


class ConfigError(ValueError):
    """A setting in the environment is missing or malformed."""


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _comma_items(value: Any) -> Any:
    """A comma-separated variable as a tuple of its non-empty items."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _lower_items(value: Any) -> Any:
    return tuple(_lower(item) for item in _comma_items(value))


# Choices and list items compare case-insensitively; lists are comma-separated, not
# JSON, as operators have always written them.
Choice = BeforeValidator(_lower)
LowerList = Annotated[tuple[str, ...], BeforeValidator(_lower_items)]


class EnvironmentSettings(BaseModel):
    """Settings read from one mapping of environment variables, by `read`.

    A plain pydantic model, not pydantic-settings' BaseSettings: `read` is handed
    the mapping to read (the process's environment, or a test's), and nothing
    else (the environment behind its back, a .env file) may be consulted, so no
    settings source is wanted, and BaseSettings with its sources turned off only
    cost every process its imports (docs/benchmarks.md).
    """

    # Defaults are validated too, as settings' are: a bad default fails at start-up.
    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    @classmethod
    def variable_keys(cls) -> dict[str, str]:
        """Each variable's name in lower case (they match in any case), to its keyword."""
        keys = (str(field.validation_alias or name) for name, field in cls.model_fields.items())
        return {key.lower(): key for key in keys}

    @classmethod
    def read(cls, env: Mapping[str, str]) -> Self:
        """The settings in `env`; raises ConfigError naming each bad variable."""
        # Blank values count as unset; variable names match in any case.
        keys = cls.variable_keys()
        values = {
            keys[name.lower()]: value.strip()
            for name, value in env.items()
            if name.lower() in keys and value.strip()
        }
        try:
            return cls(**values)
        except ValidationError as error:
            raise ConfigError("; ".join(map(explain, error.errors()))) from None


# What each kind of pydantic error means to an operator, with the value they wrote.
EXPLANATIONS = {
    "int_parsing": "must be a whole number, got {input!r}",
    "greater_than_equal": "must be at least {ge}, got {input}",
    "less_than_equal": "must be at most {le}, got {input}",
    "bool_parsing": "must be true or false, got {input!r}",
    "literal_error": "must be one of {expected}, got {input!r}",
}


def explain(error: ErrorDetails) -> str:
    """One validation error in an operator's words, naming the variable."""
    if not error["loc"]:
        # A rule across variables (a model validator): its message names them.
        return str(error.get("ctx", {}).get("error", error["msg"]))
    name = str(error["loc"][0]).upper()
    template = EXPLANATIONS.get(error["type"])
    if template is None:
        return f"{name}: {error['msg']}, got {error['input']!r}"
    return f"{name} " + template.format(input=error["input"], **error.get("ctx", {}))


def number(default: int, minimum: int = 0) -> Any:
    """A field for a whole number (seconds, bytes, a count), `minimum` or more."""
    return Field(default, ge=minimum)


class Settings(EnvironmentSettings):
    """Every environment variable the app reads: one field each, named as the variable."""

    pulseboard_env: Annotated[Literal["development", "production"], Choice] = "development"
    secret_key: str = Field(DEFAULT_SECRET_KEY, repr=False)
    enrollment_key: str = Field(DEFAULT_ENROLLMENT_KEY, repr=False)
    # Unset: a SQLite file in the instance folder (load_config knows where that is).
    database_url: str | None = Field(None, repr=False)
    redis_url: str | None = Field(None, repr=False)
    heartbeat_interval_seconds: int = number(30, 1)
    grace_period_seconds: int = number(30)
    disconnect_after_seconds: int = number(300, 1)
    heartbeat_min_interval_seconds: int = number(10)
    heartbeat_jitter_percent: int = Field(5, ge=0, le=MAX_JITTER_PERCENT)
    heartbeat_max_per_minute: int = number(10, 1)
    bad_token_max_per_minute: int = number(30, 1)
    enroll_max_per_minute: int = number(60, 1)
    reenroll_max_per_hour: int = number(10, 1)
    ratelimit_enabled: bool = True
    reconnect_delay_seconds: int = number(5)
    reconnect_ttl_seconds: int = number(600, 1)
    command_kinds: Annotated[tuple[CommandKind, ...], BeforeValidator(_lower_items)] = (
        COMMAND_KIND_NAMES
    )
    command_ttl_seconds: int = number(600, 1)
    command_ack_ttl_seconds: int = number(600, 1)
    screenshot_max_bytes: int = number(2_000_000, 1024)
    bulk_reconnect_spread_seconds: int = number(60)
    bulk_chunk_size: int = number(500, 1)
    bulk_inline_max: int = number(2000)
    bulk_stall_seconds: int = number(120, 10)
    flap_window_seconds: int = number(3600, 1)
    flap_threshold: int = number(4, 1)
    # 5 s, not a minute: an alert is due within 15 s of its condition (issue 15), and a
    # sweep with nothing due is an indexed range query (docs/benchmarks.md).
    sweep_interval_seconds: int = number(5, 1)
    ping_recheck_seconds: int = number(60, 1)
    # Unset: on without REDIS_URL (nothing else would sweep), off with it (the jobs do).
    embedded_sweeper: bool | None = None
    telemetry_sample_seconds: int = number(300, 1)
    telemetry_retention_seconds: int = number(86_400, 60)
    # Feeds Flask's MAX_CONTENT_LENGTH: larger bodies get 413.
    max_body_bytes: int = number(64 * 1024, 1024)
    extra_max_bytes: int = number(4096)
    # Deeper JSON than this is refused at the door: serialisers have depth limits
    # of their own (pydantic's is 255), and a stored value past them breaks reads.
    extra_max_depth: int = number(10, 1)
    log_format: Annotated[Literal["console", "json"], Choice] = "console"
    log_level: Annotated[Literal["debug", "info", "warning", "error", "critical"], Choice] = "info"
    metrics_token: str | None = Field(None, repr=False)
    metrics_public: bool = False
    # The device app's pools: one connection per gunicorn thread.
    gunicorn_threads: int = number(8, 1)
    # The alerts (docs/alerts.md): channels, delivery and grouping.
    alert_allowed_schemes: LowerList = _lower_items(DEFAULT_ALERT_SCHEMES)
    alert_allow_private_targets: bool = False
    alert_dashboard_url: Annotated[str, BeforeValidator(lambda url: str(url).rstrip("/"))] = (
        "http://127.0.0.1:5000"
    )
    alert_delivery_interval_seconds: int = number(2, 1)
    alert_group_wait_seconds: int = number(3)
    alert_retry_for_seconds: int = number(86_400, 60)
    alert_claim_timeout_seconds: int = number(120, 5)
    alert_send_timeout_seconds: int = number(10, 1)
    alert_monitoring_gap_seconds: int = number(180, 10)
    # Old SECRET_KEYs that still decrypt channels: secrets, so their case is kept.
    alert_previous_secret_keys: Annotated[tuple[str, ...], BeforeValidator(_comma_items)] = Field(
        (), repr=False
    )
    # History (docs/availability.md): how long it is kept, and how often it is pruned.
    event_retention_days: int = number(93, 2)
    rollup_retention_days: int = number(400, 2)
    prune_interval_seconds: int = number(3600, 10)

    @model_validator(mode="after")
    def _disconnect_after_the_grace(self) -> Self:
        late = self.heartbeat_interval_seconds + self.grace_period_seconds
        if self.disconnect_after_seconds <= late:
            raise ValueError(
                "DISCONNECT_AFTER_SECONDS must be greater than "
                f"HEARTBEAT_INTERVAL_SECONDS + GRACE_PERIOD_SECONDS ({late}), "
                f"got {self.disconnect_after_seconds}"
            )
        return self

    @model_validator(mode="after")
    def _production_secrets(self) -> Self:
        if self.pulseboard_env == "production":
            check_production_secrets(
                {"SECRET_KEY": self.secret_key, "ENROLLMENT_KEY": self.enrollment_key},
                metrics_token=self.metrics_token,
                metrics_public=self.metrics_public,
            )
        return self


def check_production_secrets(
    secrets: Mapping[str, str | None], *, metrics_token: str | None, metrics_public: bool
) -> None:
    """Refuse to run in production on default, short or missing secrets."""
    defaults = {DEFAULT_SECRET_KEY, DEFAULT_ENROLLMENT_KEY}
    for name, value in secrets.items():
        if value is None or value in defaults:
            raise ConfigError(f"{name} must be set in production (PULSEBOARD_ENV=production)")
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{name} must be at least {MIN_SECRET_LENGTH} characters in production, "
                f"got {len(value)}"
            )
    if metrics_token is None and not metrics_public:
        raise ConfigError(
            "METRICS_TOKEN must be set in production, or METRICS_PUBLIC=true to serve "
            "/metrics to anyone who can reach it"
        )
    if metrics_token is not None and len(metrics_token) < MIN_SECRET_LENGTH:
        raise ConfigError(f"METRICS_TOKEN must be at least {MIN_SECRET_LENGTH} characters")


def default_database_url(instance_path: str) -> str:
    """The embedded default: a SQLite file in the app's instance folder."""
    return "sqlite:///" + str(Path(instance_path) / "pulseboard.sqlite3")


def normalise_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg 3, whatever driver the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# Fields whose Flask config key is not their variable's name. DATABASE_URL becomes
# SQLALCHEMY_DATABASE_URI below; METRICS_PUBLIC is read by the production check only.
FLASK_KEYS = {"max_body_bytes": "MAX_CONTENT_LENGTH", "gunicorn_threads": "DEVICE_POOL_SIZE"}
NOT_IN_FLASK_CONFIG = {"database_url", "metrics_public"}


def load_config(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    settings = Settings.read(env)
    config = {
        FLASK_KEYS.get(name, name.upper()): value
        for name, value in settings.model_dump().items()
        if name not in NOT_IN_FLASK_CONFIG
    }
    database_url = settings.database_url or default_database_url(instance_path)
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(database_url)
    if settings.embedded_sweeper is None:
        config["EMBEDDED_SWEEPER"] = settings.redis_url is None
    config["LOG_LEVEL"] = settings.log_level.upper()
    # The CSRF token is tied to the session; an expiry of its own would make a
    # grid left open for an hour refuse its next click.
    config["WTF_CSRF_TIME_LIMIT"] = None
    return config


def complete_config(config: dict[str, Any]) -> None:
    """Fill in the settings that follow from others (after any overrides), and the fixed ones."""
    production = config["PULSEBOARD_ENV"] == "production"
    for prefix in ("SESSION", "REMEMBER"):
        # Flask ships these keys with lax defaults, so they are set, not defaulted.
        config[f"{prefix}_COOKIE_HTTPONLY"] = True
        config[f"{prefix}_COOKIE_SAMESITE"] = "Lax"
        # Production is served over HTTPS (behind the load balancer), so the
        # cookie must never travel in clear.
        config[f"{prefix}_COOKIE_SECURE"] = production
    # The dashboard asks for CSRF checks itself (dashboard/__init__.py): the API
    # takes no cookies, so it has nothing to check.
    config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(config, pool_size=10))
    config.setdefault(
        "SQLALCHEMY_BINDS", autocommit_binds(config, config["SQLALCHEMY_ENGINE_OPTIONS"])
    )
    config.setdefault(
        "DEVICE_ENGINE_OPTIONS", engine_options(config, pool_size=config["DEVICE_POOL_SIZE"])
    )
    redis_url = config["REDIS_URL"]
    config.setdefault("RATELIMIT_STORAGE_URI", limit_storage_uri(redis_url))
    if redis_url:
        # A Redis that stops answering (a partition, not a refused port) must cost
        # a heartbeat half a second at most, not the operating system's timeouts.
        config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
        )
    config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # Redis going away must not lock everyone out of the dashboard: login limits
    # fall back to this process's memory until it returns.
    config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)


def limit_storage_uri(redis_url: str | None) -> str:
    """Where `limits` counts: the Redis at `redis_url`, else this process's memory.

    redis-py and RQ name a Redis on a Unix socket `unix:///path`; `limits` names
    it `redis+unix:///path`, and refuses the other spelling at start-up.
    """
    if not redis_url:
        return MEMORY_STORAGE_URI
    if redis_url.startswith("unix://"):
        return "redis+" + redis_url
    return redis_url


def engine_options(config: Mapping[str, Any], *, pool_size: int) -> dict[str, Any]:
    """SQLAlchemy engine options for the configured database, `pool_size` connections kept."""
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    # No pool_pre_ping: it costs a round trip per request. A connection that died
    # with the server fails one request (503) and is replaced.
    return {"pool_size": pool_size, "max_overflow": pool_size, "pool_recycle": 3600}


def autocommit_binds(config: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """A second engine whose connections stay in autocommit, for single-statement writes.

    The heartbeat's common case is one UPDATE: no BEGIN/COMMIT round trips, and
    no isolation-level switching on every checkout.
    """
    return {
        AUTOCOMMIT_BIND: {
            "url": config["SQLALCHEMY_DATABASE_URI"],
            "isolation_level": "AUTOCOMMIT",
            # Nothing to roll back on a connection that never opens a transaction.
            "pool_reset_on_return": None,
            **options,
        }
    }
