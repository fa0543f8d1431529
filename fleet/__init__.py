"""Pulseboard's core: the app factory, config, models, status rules and services."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from fleet.config import load_config
from fleet.extensions import AUTOCOMMIT_BIND, csrf, db, limiter, login_manager, migrate
from fleet.logs import configure_logging, init_request_logging
from fleet.sessions import LazyCookieSessionInterface

ROOT = Path(__file__).resolve().parent.parent


class FleetFlask(Flask):
    """Flask, remembering which of its hooks and views need no async wrapper.

    Flask asks `inspect.iscoroutinefunction` of every hook and of the view on
    every request: nine times a heartbeat, about 3 % of its work, for answers
    that never change.
    """

    # Registered hooks and views number a few dozen; only per-request callables
    # (`after_this_request`) could fill the cache, so it starts over when full.
    SYNC_CACHE_SIZE = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_callables: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            found = self._sync_callables.get(func)
        except TypeError:  # a callable object that cannot be hashed
            return super().ensure_sync(func)
        if found is None:
            if len(self._sync_callables) >= self.SYNC_CACHE_SIZE:
                self._sync_callables.clear()
            found = self._sync_callables[func] = super().ensure_sync(func)
        return found


def create_app(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Flask:
    """Build the app from the environment (or `env`), with `overrides` applied last."""
    app = FleetFlask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(os.environ if env is None else env, app.instance_path))
    app.config.update(overrides or {})
    app.session_interface = LazyCookieSessionInterface()
    _configure_extensions(app)
    configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    init_request_logging(app, quiet_endpoints=_quiet_endpoints())
    _register_blueprints(app)
    return app


def _configure_extensions(app: Flask) -> None:
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app.config))
    # A second pool whose connections stay in autocommit, for single-statement
    # writes on the heartbeat hot path (no BEGIN/COMMIT round trips, and no
    # isolation-level switching on every checkout).
    app.config.setdefault(
        "SQLALCHEMY_BINDS",
        {
            AUTOCOMMIT_BIND: {
                "url": app.config["SQLALCHEMY_DATABASE_URI"],
                "isolation_level": "AUTOCOMMIT",
                # Nothing to roll back on a connection that never opens a transaction.
                "pool_reset_on_return": None,
                **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
            }
        },
    )
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    if app.config["REDIS_URL"]:
        # A Redis that stops answering (a partition, not a refused port) must cost
        # a heartbeat half a second at most, not the operating system's timeouts.
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
        )
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # Redis going away must not turn every heartbeat into an error: limits fall
    # back to this process's memory until it returns.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    limiter.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)


def _engine_options(config: Mapping[str, Any]) -> dict[str, Any]:
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    # No pool_pre_ping: it costs a round trip per request. A connection that died
    # with the server fails one request (503) and is replaced.
    return {"pool_size": 10, "max_overflow": 10, "pool_recycle": 3600}


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while heartbeats write; foreign keys are off by default.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def _quiet_endpoints() -> frozenset[str]:
    from api import HEARTBEAT_ENDPOINT

    return frozenset({HEARTBEAT_ENDPOINT})


def _register_blueprints(app: Flask) -> None:
    from api import bp as api_bp
    from api.errors import register_error_handlers
    from dashboard import bp as dashboard_bp
    from fleet.commands import register_cli
    from fleet.health import mark_started
    from fleet.security_headers import init_app as add_security_headers
    from jobs import embedded
    from ops import bp as ops_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(dashboard_bp)
    mark_started(app)
    csrf.exempt(api_bp)
    register_error_handlers(app)
    add_security_headers(app)
    register_cli(app)
    embedded.install(app)
