"""The device API as a lean Flask app of its own: enrolment and heartbeats.

A fleet sends thousands of heartbeats a second, and each needs none of what
the dashboard and the admin API bring: sessions, logins, CSRF, Flask-Limiter's
route resolution. The main app hands the device paths to this app by exact
path (`DeviceDispatcher`, a WSGI middleware, as Flask documents for
`app.wsgi_app`), so `wsgi:app` stays one Flask object for gunicorn, the
`flask` command and the test client. This app keeps the request ids, access
lines, metrics and JSON errors every API answer has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from fleet.limit_storage import LimitStorage

if TYPE_CHECKING:
    from fleet.ratelimits import FloodGuard

DEVICE_PATHS = frozenset(
    {"/api/devices/heartbeat", "/api/devices/register", "/api/devices/screenshots"}
)
HEARTBEAT_ENDPOINT = "api.heartbeat"
EXTENSION_KEY = "pulseboard.device_app"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_device_app(
    main: Flask, engine_options: Mapping[str, Any], limits: LimitStorage, guard: FloodGuard
) -> Flask:
    """The device app beside `main`: its config less the session secret, its own engine pool."""
    from api.errors import register_error_handlers
    from device_api import views
    from fleet.extensions import db
    from fleet.logs import init_request_logging
    from fleet.ratelimits import install
    from ops.request_metrics import count_request

    app = Flask(__name__)
    app.config.update(main.config)
    # No secret key: Flask then opens no session at all (a null session), which
    # is what a device, sending no cookie, should cost.
    app.config["SECRET_KEY"] = None
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(engine_options)
    app.config["SQLALCHEMY_BINDS"] = _binds_with(main.config["SQLALCHEMY_BINDS"], engine_options)
    db.init_app(app)
    install(app, limits, guard)
    init_request_logging(app, quiet_endpoints=frozenset({HEARTBEAT_ENDPOINT}))
    app.after_request(count_request)
    register_error_handlers(app)
    app.register_blueprint(views.bp)
    return app


def _binds_with(binds: Mapping[str, Any], engine_options: Mapping[str, Any]) -> dict[str, Any]:
    return {name: {**options, **engine_options} for name, options in binds.items()}


def device_app_of(main: Flask) -> Flask:
    """The device app that `main` dispatches to (built now if no device has called yet)."""
    return main.extensions[EXTENSION_KEY].device_app()


class DeviceDispatcher:
    """WSGI middleware: the device paths go to the device app, everything else to the main app.

    The device app is built with the first device request, not with the main
    app: its views bring the heartbeat's services and schemas, which a `flask`
    command (or a dashboard-only process) never needs.
    """

    def __init__(self, main: WSGIApp, build_device_app: Callable[[], Flask]) -> None:
        self.main = main
        self.build_device_app = build_device_app
        self.device: WSGIApp | None = None
        self._device_app: Flask | None = None
        self._building = threading.Lock()

    def device_app(self) -> Flask:
        if self._device_app is None:
            with self._building:
                if self._device_app is None:
                    app = self.build_device_app()
                    self.device = app.wsgi_app
                    self._device_app = app
        return self._device_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") in DEVICE_PATHS:
            device = self.device or self.device_app().wsgi_app
            return device(environ, start_response)
        return self.main(environ, start_response)
