"""The JSON API: admin endpoints, error handlers, OpenAPI (the device endpoints: device_api/)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from api import admin, alerts, hours, openapi, reports  # noqa: E402,F401  (routes register on import)
