"""The JSON API: admin endpoints, error handlers, OpenAPI (the device endpoints: device_api/).

Every route is declared in the table below and its view imported with the
route's first request (Flask's lazily loaded views): building the app, as every
`flask` command does, then imports none of the views' schemas and services.
"""

from flask import Blueprint

from fleet.lazy_views import add_lazy_routes

bp = Blueprint("api", __name__, url_prefix="/api")

# (method, path, "module:view"); the endpoint is the view's name, "api.<view>".
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/admin/external/devices-needing-ping", "api.admin:devices_needing_ping"),
    ("POST", "/admin/external/ping", "api.admin:ping"),
    ("POST", "/admin/external/ping-batch", "api.admin:ping_batch"),
    ("GET", "/admin/devices", "api.admin:list_devices"),
    ("GET", "/admin/devices/<uid>", "api.admin:get_device"),
    ("POST", "/admin/devices/<uid>/reconnect", "api.admin:reconnect"),
    ("POST", "/admin/devices/<uid>/commands", "api.admin:request_command"),
    ("GET", "/admin/devices/<uid>/commands", "api.admin:list_commands"),
    ("POST", "/admin/commands", "api.admin:bulk_command"),
    ("GET", "/admin/commands/<int:action_id>", "api.admin:bulk_progress"),
    ("GET", "/admin/incidents", "api.alerts:list_incidents"),
    ("POST", "/admin/incidents/<int:incident_id>/acknowledge", "api.alerts:acknowledge_incident"),
    ("GET", "/admin/channels", "api.alerts:list_channels"),
    ("POST", "/admin/channels", "api.alerts:add_channel"),
    ("DELETE", "/admin/channels/<name>", "api.alerts:remove_channel"),
    ("GET", "/admin/sites/<site>/schedule", "api.hours:get_site_schedule"),
    ("PUT", "/admin/sites/<site>/schedule", "api.hours:put_site_schedule"),
    ("DELETE", "/admin/sites/<site>/schedule", "api.hours:delete_site_schedule"),
    ("PUT", "/admin/devices/<uid>/schedule", "api.hours:put_device_schedule"),
    ("GET", "/admin/maintenance", "api.hours:list_maintenance"),
    ("POST", "/admin/maintenance", "api.hours:create_maintenance"),
    ("POST", "/admin/maintenance/<int:window_id>/end", "api.hours:end_maintenance"),
    ("GET", "/admin/devices/<uid>/availability", "api.reports:device_availability"),
    ("GET", "/admin/reports/availability", "api.reports:availability_report"),
    ("GET", "/admin/reports/outages", "api.reports:outages_report"),
    ("GET", "/openapi.json", "api.openapi:openapi_json"),
    ("GET", "/docs", "api.openapi:docs_page"),
)

add_lazy_routes(bp, ROUTES)
