"""Health, readiness and Prometheus metrics; thin views over fleet.health and ops.exposition."""

from __future__ import annotations

from flask import Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import bearer_token
from fleet.health import readiness
from fleet.timeutil import utcnow
from fleet.tokens import secrets_match


def healthz():
    """The process answers; nothing else is checked, so a restart is the only cure for a 5xx."""
    return jsonify({"status": "ok"})


def readyz():
    """Ready when the database, Redis (if configured) and the sweep are all well."""
    checks = readiness(utcnow())
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return jsonify(body), 200 if ready else 503


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
    # Here, not at the top: the fleet gauges read through the services and the
    # models, which a worker's first /healthz (a liveness probe) should not load.
    from ops.exposition import render_latest

    return Response(render_latest(), content_type=CONTENT_TYPE_LATEST)
