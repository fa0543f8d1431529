"""The browser dashboard: login, the live fleet grid, device pages, events and actions."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from dashboard import alerts, auth, devices, display, fleet  # noqa: E402,F401  (routes register on import)
