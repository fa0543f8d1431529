"""Operations endpoints: /healthz, /readyz and /metrics, plus request metrics for every view.

Declared here and imported with their first use, like the API's and the
dashboard's routes: the counters (prometheus-client) and the exposition's
services load with the first request, not with every `flask` command.
"""

from flask import Blueprint

from fleet.lazy_views import LazyView, add_lazy_routes

bp = Blueprint("ops", __name__)

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/healthz", "ops.views:healthz"),
    ("GET", "/readyz", "ops.views:readyz"),
    ("GET", "/metrics", "ops.views:prometheus_metrics"),
)

add_lazy_routes(bp, ROUTES)
bp.after_app_request(LazyView("ops.request_metrics:count_request"))
