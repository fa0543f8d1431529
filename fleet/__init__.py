"""Pulseboard's core: the app factory, config, models, status rules and services."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Imported for its side effect: limits learns the pulseboard-memory:// scheme
# before Flask-Limiter builds its storage.
from fleet import limit_storage  # noqa: F401
from fleet.config import complete_config, load_config
from fleet.extensions import csrf, db, limiter, login_manager
from fleet.logs import configure_logging, init_request_logging

ROOT = Path(__file__).resolve().parent.parent


def create_app(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Flask:
    """Build the app from the environment (or `env`), with `overrides` applied last."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(os.environ if env is None else env, app.instance_path))
    app.config.update(overrides or {})
    complete_config(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    _configure_extensions(app)
    init_request_logging(app)
    _register_blueprints(app)
    _mount_device_app(app)
    return app


def _configure_extensions(app: Flask) -> None:
    db.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)


def _mount_device_app(app: Flask) -> None:
    from device_api import EXTENSION_KEY, DeviceDispatcher, create_device_app
    from fleet import ratelimits

    limits = ratelimits.storage_for(app.config)
    guard = ratelimits.FloodGuard()
    ratelimits.install(app, limits, guard)
    dispatcher = app.extensions[EXTENSION_KEY] = DeviceDispatcher(
        app.wsgi_app,
        lambda: create_device_app(app, app.config["DEVICE_ENGINE_OPTIONS"], limits, guard),
    )
    # Flask's documented place for middleware: the device paths never reach the main app.
    app.wsgi_app = dispatcher  # type: ignore[method-assign]


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while heartbeats write; foreign keys are off by default.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def _register_blueprints(app: Flask) -> None:
    from api import bp as api_bp
    from api.errors import refuse_nul_characters, register_error_handlers
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
    # Not in the device app: it serves two exact paths and reads no query
    # string, and its JSON bodies are checked for NUL where they are parsed.
    app.before_request(refuse_nul_characters)
    register_error_handlers(app)
    add_security_headers(app)
    register_cli(app)
    embedded.install(app)
