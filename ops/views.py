"""Health, readiness and Prometheus metrics; thin views over fleet.health and ops.exposition."""

from __future__ import annotations

from flask import Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import bearer_token
from device_api import HEARTBEAT_ENDPOINT
from fleet import alert_metrics, metrics
from fleet.context import current_request
from fleet.health import readiness
from fleet.logs import elapsed_seconds
from fleet.timeutil import utcnow
from fleet.tokens import secrets_match
from ops import bp


@bp.get("/healthz")
def healthz():
    """The process answers; nothing else is checked, so a restart is the only cure for a 5xx."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready when the database, Redis (if configured) and the sweep are all well."""
    checks = readiness(utcnow())
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
def prometheus_metrics():
    """The Prometheus exposition; with METRICS_TOKEN set, only for that bearer token."""
    expected = current_app.config.get("METRICS_TOKEN")
    if expected:
        presented = bearer_token()
        if presented is None or not secrets_match(expected, presented):
            return Response(
                "metrics need the bearer token set in METRICS_TOKEN\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    # Here, not at the top: the fleet gauges read through the services, which a
    # process that is never scraped (a `flask` command) need not import.
    from ops.exposition import render_latest

    body = render_latest() + alert_metrics.exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)


@bp.after_app_request
def count_request(response: Response) -> Response:
    """Observe every request's latency by endpoint, and count heartbeats by result."""
    current = current_request()
    rule = current.url_rule
    endpoint = rule.endpoint if rule else "unmatched"
    seconds = elapsed_seconds(current)
    metrics.record_request(endpoint, current.method, response.status_code, seconds)
    if endpoint == HEARTBEAT_ENDPOINT:
        metrics.record_heartbeat(response.status_code)
    return response
