"""The JSON API: device endpoints, admin endpoints, error handlers, OpenAPI."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

# The hot path: its rate limits, access lines and metrics are handled apart.
HEARTBEAT_ENDPOINT = "api.heartbeat"

from api import admin, alerts, devices, openapi  # noqa: E402,F401  (routes register on import)
