"""The browser dashboard: login, the live fleet grid, device pages, events and actions."""

from flask import Blueprint

from fleet.extensions import csrf

bp = Blueprint("dashboard", __name__)
# Only the dashboard takes cookies, so only it checks CSRF tokens
# (WTF_CSRF_CHECK_DEFAULT is off); first, before the login guard.
bp.before_request(csrf.protect)

from dashboard import (  # noqa: E402,F401  (routes register on import)
    alerts,
    auth,
    availability,
    commands,
    devices,
    display,
    events,
    fleet,
    hours,
)
