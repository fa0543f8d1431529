"""The browser dashboard: login, the live fleet grid, device pages, events and actions.

Every route, and every template helper a view module defines, is declared in
the tables below and imported with its first use (Flask's lazily loaded views),
so building the app imports none of the pages' services. What every page needs
is imported now: the login guard and error pages (auth) and the display helpers.
"""

from flask import Blueprint

from fleet.extensions import csrf
from fleet.lazy_views import add_lazy_routes, add_lazy_template_helpers

bp = Blueprint("dashboard", __name__)
# Only the dashboard takes cookies, so only it checks CSRF tokens
# (WTF_CSRF_CHECK_DEFAULT is off); first, before the login guard.
bp.before_request(csrf.protect)

# (methods, path, "module:view"); the endpoint is the view's name, "dashboard.<view>".
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET POST", "/login", "dashboard.auth:login"),
    ("POST", "/logout", "dashboard.auth:logout"),
    ("GET", "/", "dashboard.fleet:fleet"),
    ("GET", "/poll", "dashboard.fleet:poll"),
    ("POST", "/devices/<uid>/reconnect", "dashboard.fleet:reconnect"),
    ("POST", "/reconnect", "dashboard.fleet:reconnect_bulk"),
    ("POST", "/commands/bulk", "dashboard.fleet:command_bulk"),
    ("GET", "/bulk/<int:action_id>", "dashboard.fleet:bulk_progress"),
    ("GET", "/devices/<uid>", "dashboard.devices:device"),
    ("POST", "/devices/<uid>/thresholds", "dashboard.devices:thresholds"),
    ("GET", "/devices/<uid>/commands", "dashboard.commands:device_commands"),
    ("POST", "/devices/<uid>/commands", "dashboard.commands:request_command"),
    ("POST", "/devices/<uid>/commands/row", "dashboard.commands:request_row_command"),
    ("GET", "/devices/<uid>/screenshots/<int:screenshot_id>", "dashboard.commands:screenshot"),
    ("GET", "/events", "dashboard.events:events"),
    ("GET", "/events/poll", "dashboard.events:events_poll"),
    ("GET", "/alerts", "dashboard.alerts:alerts"),
    ("POST", "/alerts/incidents/<int:incident_id>/acknowledge", "dashboard.alerts:acknowledge"),
    ("GET", "/alerts/channels", "dashboard.alerts:alert_channels"),
    ("POST", "/alerts/channels", "dashboard.alerts:add_channel"),
    ("POST", "/alerts/channels/<name>/remove", "dashboard.alerts:remove_channel"),
    ("POST", "/alerts/channels/<name>/test", "dashboard.alerts:test_channel"),
    ("GET", "/alerts/tests/<int:notification_id>", "dashboard.alerts:test_result"),
    ("GET", "/maintenance", "dashboard.hours:maintenance"),
    ("POST", "/maintenance", "dashboard.hours:create_maintenance"),
    ("POST", "/maintenance/<int:window_id>/end", "dashboard.hours:end_maintenance"),
    ("GET", "/sites/<site>/schedule", "dashboard.hours:site_schedule"),
    ("POST", "/sites/<site>/schedule", "dashboard.hours:set_site_schedule"),
    ("GET", "/sites", "dashboard.availability:sites_page"),
    ("GET", "/reports", "dashboard.availability:reports_page"),
    ("GET", "/reports/availability.csv", "dashboard.availability:availability_csv"),
    ("GET", "/reports/outages.csv", "dashboard.availability:outages_csv"),
)

# ("global" or "filter", the name templates use, "module:function").
TEMPLATE_HELPERS: tuple[tuple[str, str, str], ...] = (
    ("global", "flap_settings", "fleet.services.queries:flap_settings"),
    ("global", "latest_command", "dashboard.commands:latest_command"),
    ("global", "row_command_kinds", "dashboard.commands:row_command_kinds"),
    ("global", "device_incident", "dashboard.alerts:device_incident"),
    ("filter", "local_time", "dashboard.hours:local_time"),
    ("filter", "window_when", "dashboard.hours:window_when"),
    ("global", "preload_grid_bars", "dashboard.availability:preload_grid_bars"),
    ("global", "grid_bar", "dashboard.availability:grid_bar"),
    ("filter", "percent", "dashboard.availability:percent"),
    ("filter", "span", "dashboard.availability:span"),
    ("filter", "bucket_word", "dashboard.availability:bucket_word"),
)

add_lazy_routes(bp, ROUTES)
add_lazy_template_helpers(bp, TEMPLATE_HELPERS)

from dashboard import auth, display  # noqa: E402,F401  (the guard and helpers register on import)
