"""The JSON API: device endpoints, admin endpoints, error handlers, OpenAPI."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from api import admin, devices, openapi  # noqa: E402,F401  (routes register on import)
