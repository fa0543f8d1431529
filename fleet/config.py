"""Configuration, read once from the environment.

Every setting has a default that gives the embedded setup (a SQLite file under
``instance/``, no Redis). Bad values fail loudly at start-up, naming the variable,
rather than surfacing later as a confusing runtime error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The bind name of the autocommit engine (`db.engines[AUTOCOMMIT_BIND]`).
AUTOCOMMIT_BIND = "autocommit"
MEMORY_STORAGE_URI = "pulseboard-memory://"
ENVIRONMENTS = ("development", "production")
# secrets.token_urlsafe(24) is 32 characters: anything shorter is guessable in time.
MIN_SECRET_LENGTH = 32
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_SECRET_KEY = "dev-secret-key-change-me"
DEFAULT_ENROLLMENT_KEY = "dev-enrollment-key"


class ConfigError(ValueError):
    """A setting in the environment is missing or malformed."""


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """The variable's value, or the default when it is unset or empty."""
    value = env.get(name, "").strip()
    return value or default


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """The variable as an integer no smaller than ``minimum``; raises ConfigError otherwise."""
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """The variable as a boolean (1/0, true/false, yes/no, on/off)."""
    raw = env_str(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """The variable, which must be one of `choices` (compared case-insensitively)."""
    value = (env_str(env, name) or default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


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


def load_config(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    interval = env_int(env, "HEARTBEAT_INTERVAL_SECONDS", 30, minimum=1)
    grace = env_int(env, "GRACE_PERIOD_SECONDS", 30, minimum=0)
    disconnect_after = env_int(env, "DISCONNECT_AFTER_SECONDS", 300, minimum=1)
    if disconnect_after <= interval + grace:
        raise ConfigError(
            "DISCONNECT_AFTER_SECONDS must be greater than "
            f"HEARTBEAT_INTERVAL_SECONDS + GRACE_PERIOD_SECONDS ({interval + grace}), "
            f"got {disconnect_after}"
        )
    redis_url = env_str(env, "REDIS_URL")
    database_url = env_str(env, "DATABASE_URL") or default_database_url(instance_path)
    production = env_choice(env, "PULSEBOARD_ENV", "development", ENVIRONMENTS) == "production"
    secret_key = env_str(env, "SECRET_KEY", DEFAULT_SECRET_KEY)
    enrollment_key = env_str(env, "ENROLLMENT_KEY", DEFAULT_ENROLLMENT_KEY)
    metrics_token = env_str(env, "METRICS_TOKEN")
    if production:
        check_production_secrets(
            {"SECRET_KEY": secret_key, "ENROLLMENT_KEY": enrollment_key},
            metrics_token=metrics_token,
            metrics_public=env_bool(env, "METRICS_PUBLIC", False),
        )
    return {
        "PULSEBOARD_ENV": "production" if production else "development",
        "SECRET_KEY": secret_key,
        "ENROLLMENT_KEY": enrollment_key,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "REDIS_URL": redis_url,
        "HEARTBEAT_INTERVAL_SECONDS": interval,
        "GRACE_PERIOD_SECONDS": grace,
        "DISCONNECT_AFTER_SECONDS": disconnect_after,
        "HEARTBEAT_MIN_INTERVAL_SECONDS": env_int(env, "HEARTBEAT_MIN_INTERVAL_SECONDS", 10),
        "HEARTBEAT_JITTER_PERCENT": env_jitter(env),
        "HEARTBEAT_MAX_PER_MINUTE": env_int(env, "HEARTBEAT_MAX_PER_MINUTE", 10, minimum=1),
        "BAD_TOKEN_MAX_PER_MINUTE": env_int(env, "BAD_TOKEN_MAX_PER_MINUTE", 30, minimum=1),
        "ENROLL_MAX_PER_MINUTE": env_int(env, "ENROLL_MAX_PER_MINUTE", 60, minimum=1),
        "REENROLL_MAX_PER_HOUR": env_int(env, "REENROLL_MAX_PER_HOUR", 10, minimum=1),
        "RATELIMIT_ENABLED": env_bool(env, "RATELIMIT_ENABLED", True),
        "RECONNECT_DELAY_SECONDS": env_int(env, "RECONNECT_DELAY_SECONDS", 5),
        "RECONNECT_TTL_SECONDS": env_int(env, "RECONNECT_TTL_SECONDS", 600, minimum=1),
        "COMMAND_KINDS": env_kinds(env),
        "COMMAND_TTL_SECONDS": env_int(env, "COMMAND_TTL_SECONDS", 600, minimum=1),
        "COMMAND_ACK_TTL_SECONDS": env_int(env, "COMMAND_ACK_TTL_SECONDS", 600, minimum=1),
        "SCREENSHOT_MAX_BYTES": env_int(env, "SCREENSHOT_MAX_BYTES", 2_000_000, minimum=1024),
        "BULK_RECONNECT_SPREAD_SECONDS": env_int(env, "BULK_RECONNECT_SPREAD_SECONDS", 60),
        "BULK_CHUNK_SIZE": env_int(env, "BULK_CHUNK_SIZE", 500, minimum=1),
        "BULK_INLINE_MAX": env_int(env, "BULK_INLINE_MAX", 2000, minimum=0),
        "BULK_STALL_SECONDS": env_int(env, "BULK_STALL_SECONDS", 120, minimum=10),
        "FLAP_WINDOW_SECONDS": env_int(env, "FLAP_WINDOW_SECONDS", 3600, minimum=1),
        "FLAP_THRESHOLD": env_int(env, "FLAP_THRESHOLD", 4, minimum=1),
        # 5 s, not a minute: an alert is due within 15 s of its condition (issue 15), and a
        # sweep with nothing due is an indexed range query (docs/benchmarks.md).
        "SWEEP_INTERVAL_SECONDS": env_int(env, "SWEEP_INTERVAL_SECONDS", 5, minimum=1),
        "PING_RECHECK_SECONDS": env_int(env, "PING_RECHECK_SECONDS", 60, minimum=1),
        "EMBEDDED_SWEEPER": env_bool(env, "EMBEDDED_SWEEPER", redis_url is None),
        "TELEMETRY_SAMPLE_SECONDS": env_int(env, "TELEMETRY_SAMPLE_SECONDS", 300, minimum=1),
        "TELEMETRY_RETENTION_SECONDS": env_int(
            env, "TELEMETRY_RETENTION_SECONDS", 86_400, minimum=60
        ),
        "MAX_CONTENT_LENGTH": env_int(env, "MAX_BODY_BYTES", 64 * 1024, minimum=1024),
        "EXTRA_MAX_BYTES": env_int(env, "EXTRA_MAX_BYTES", 4096, minimum=0),
        # The CSRF token is tied to the session; an expiry of its own would make a
        # grid left open for an hour refuse its next click.
        "WTF_CSRF_TIME_LIMIT": None,
        "LOG_FORMAT": env_choice(env, "LOG_FORMAT", "console", ("console", "json")),
        "LOG_LEVEL": env_choice(env, "LOG_LEVEL", "info", LOG_LEVELS).upper(),
        "METRICS_TOKEN": metrics_token,
        # The device app's pools: one connection per gunicorn thread.
        "DEVICE_POOL_SIZE": env_int(env, "GUNICORN_THREADS", 8, minimum=1),
        # Deeper JSON than this is refused at the door: serialisers have depth limits
        # of their own (pydantic's is 255), and a stored value past them breaks reads.
        "EXTRA_MAX_DEPTH": env_int(env, "EXTRA_MAX_DEPTH", 10, minimum=1),
        **alert_settings(env),
    }


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
    config.setdefault("RATELIMIT_STORAGE_URI", redis_url or MEMORY_STORAGE_URI)
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


# --- Alerts (issue 15) ------------------------------------------------------------

DEFAULT_ALERT_SCHEMES = (
    "mailto,mailtos,json,jsons,slack,msteams,discord,tgram,ntfy,ntfys,pover,webhook,webhooks"
)


MAX_JITTER_PERCENT = 20


def env_jitter(env: Mapping[str, str]) -> int:
    """HEARTBEAT_JITTER_PERCENT: how far a reply's interval guidance may stray (0 turns it off)."""
    percent = env_int(env, "HEARTBEAT_JITTER_PERCENT", 5)
    if percent > MAX_JITTER_PERCENT:
        # Past a fifth, a late beat runs into the grace period rather than spreading a fleet out.
        raise ConfigError(
            f"HEARTBEAT_JITTER_PERCENT must be at most {MAX_JITTER_PERCENT}, got {percent}"
        )
    return percent


def env_list(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """A comma-separated variable as a tuple of lower-case, non-empty items."""
    raw = env_str(env, name, default) or ""
    return tuple(item.strip().lower() for item in raw.split(",") if item.strip())


COMMAND_KIND_NAMES = ("reconnect", "restart_app", "reboot", "refresh_content", "screenshot")


def env_kinds(env: Mapping[str, str]) -> tuple[str, ...]:
    """COMMAND_KINDS: the command kinds this fleet accepts (all of them by default)."""
    kinds = env_list(env, "COMMAND_KINDS", ",".join(COMMAND_KIND_NAMES))
    unknown = sorted(set(kinds) - set(COMMAND_KIND_NAMES))
    if unknown:
        raise ConfigError(
            f"COMMAND_KINDS names unknown kinds {', '.join(unknown)}; "
            f"choose from {', '.join(COMMAND_KIND_NAMES)}"
        )
    return kinds


def alert_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The alerts' settings: channels, delivery and grouping (docs/alerts.md)."""
    return {
        "ALERT_ALLOWED_SCHEMES": env_list(env, "ALERT_ALLOWED_SCHEMES", DEFAULT_ALERT_SCHEMES),
        "ALERT_ALLOW_PRIVATE_TARGETS": env_bool(env, "ALERT_ALLOW_PRIVATE_TARGETS", False),
        "ALERT_DASHBOARD_URL": (
            env_str(env, "ALERT_DASHBOARD_URL", "http://127.0.0.1:5000") or ""
        ).rstrip("/"),
        "ALERT_DELIVERY_INTERVAL_SECONDS": env_int(
            env, "ALERT_DELIVERY_INTERVAL_SECONDS", 2, minimum=1
        ),
        "ALERT_GROUP_WAIT_SECONDS": env_int(env, "ALERT_GROUP_WAIT_SECONDS", 3),
        "ALERT_RETRY_FOR_SECONDS": env_int(env, "ALERT_RETRY_FOR_SECONDS", 86_400, minimum=60),
        "ALERT_CLAIM_TIMEOUT_SECONDS": env_int(env, "ALERT_CLAIM_TIMEOUT_SECONDS", 120, minimum=5),
        "ALERT_SEND_TIMEOUT_SECONDS": env_int(env, "ALERT_SEND_TIMEOUT_SECONDS", 10, minimum=1),
        "ALERT_MONITORING_GAP_SECONDS": env_int(
            env, "ALERT_MONITORING_GAP_SECONDS", 180, minimum=10
        ),
        "ALERT_PREVIOUS_SECRET_KEYS": tuple(
            key for key in (env_str(env, "ALERT_PREVIOUS_SECRET_KEYS") or "").split(",") if key
        ),
    }
