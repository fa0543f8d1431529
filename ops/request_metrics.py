"""Every request's latency and count, and heartbeats by result: an after-request hook of
both apps (the main app's, and the device app's for the device paths)."""

from __future__ import annotations

from flask import Response

from device_api import HEARTBEAT_ENDPOINT
from fleet import metrics
from fleet.context import current_request
from fleet.logs import elapsed_seconds


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
