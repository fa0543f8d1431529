"""Prometheus counters and histograms, kept by the process that does the work.

Under gunicorn each worker is a process of its own, so with
`PROMETHEUS_MULTIPROC_DIR` set (see gunicorn.conf.py) they are written to files
in that directory and a scrape of any worker sums them all. The exposition,
with the fleet gauges read from the database, is ops.exposition's: this module
imports no service, so every service may count through it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram

# prometheus-client writes into this directory as soon as a metric is made.
# gunicorn.conf.py creates it for the web workers, but a `flask` command or an
# RQ worker may be the first process on the machine to start.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

HEARTBEATS = Counter(
    "pulseboard_heartbeats_total",
    "Heartbeat requests by result: accepted, rate_limited, unauthorized, invalid, error.",
    ["result"],
)
TRANSITIONS = Counter(
    "pulseboard_status_transitions_total",
    "Device status transitions committed by this process, by from, to and source.",
    ["from_status", "to_status", "source"],
)
PING_RESULTS = Counter(
    "pulseboard_ping_results_total",
    "External ping results, by whether they were applied and whether the device answered.",
    ["applied", "reachable"],
)
REQUEST_LATENCY = Histogram(
    "pulseboard_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint and method.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(
    "pulseboard_http_requests_total",
    "HTTP requests answered, by endpoint, method and status code.",
    ["endpoint", "method", "status"],
)
SWEEP_DURATION = Histogram(
    "pulseboard_sweep_duration_seconds",
    "Duration of the timeout sweeps run by this process.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
SWEEP_TRANSITIONS = Counter(
    "pulseboard_sweep_transitions_total",
    "Status transitions made by the timeout sweeps run by this process.",
)
DELIVERIES = Counter(
    "pulseboard_notification_deliveries_total",
    "Notification delivery attempts by this process, by result: sent, retrying, failed.",
    ["result"],
)
COMMANDS = Counter(
    "pulseboard_commands_total",
    "Remote-command events committed by this process, by command kind, event (requested, "
    "replaced, delivered, acknowledged, expired, unacknowledged) and the device's result "
    "(ok or failed for an acknowledgement, none otherwise).",
    ["kind", "event", "result"],
)


def heartbeat_result(status_code: int) -> str:
    """The result label of a heartbeat answered with this HTTP status."""
    if status_code < 300:
        return "accepted"
    if status_code == 429:
        return "rate_limited"
    if status_code in (401, 403):
        return "unauthorized"
    if status_code < 500:
        return "invalid"
    return "error"


def record_heartbeat(status_code: int) -> None:
    """Count one heartbeat request by its outcome."""
    _heartbeat_series(status_code).inc()


# A metric's `labels()` checks and looks up its series under a lock; the few
# series every request lands in are kept at hand instead (both run per request).
@lru_cache(maxsize=64)
def _heartbeat_series(status_code: int) -> Any:
    return HEARTBEATS.labels(heartbeat_result(status_code))


def record_transition(from_status: str | None, to_status: str | None, source: str) -> None:
    """Count one committed status transition."""
    TRANSITIONS.labels(from_status or "none", to_status or "none", source).inc()


def record_command_event(event_kind: str, details: dict[str, Any] | None) -> None:
    """Count one committed command event ("command_delivered", ...) of the command in `details`."""
    details = details or {}
    event = event_kind.removeprefix("command_")
    _command_series(details.get("command", "unknown"), event, details.get("result") or "none").inc()


@lru_cache(maxsize=256)
def _command_series(kind: str, event: str, result: str) -> Any:
    return COMMANDS.labels(kind, event, result)


def record_delivery(result: str) -> None:
    """Count one notification delivery attempt by its result."""
    DELIVERIES.labels(result).inc()


def record_ping_result(applied: bool, reachable: bool) -> None:
    """Count one external ping result (call once per result, batch items included)."""
    PING_RESULTS.labels(str(applied).lower(), str(reachable).lower()).inc()


def record_request(endpoint: str, method: str, status_code: int, seconds: float) -> None:
    """Count one HTTP request and observe its latency."""
    latency, count = _request_series(endpoint, method, status_code)
    latency.observe(seconds)
    count.inc()


@lru_cache(maxsize=1024)
def _request_series(endpoint: str, method: str, status_code: int) -> tuple[Any, Any]:
    return (
        REQUEST_LATENCY.labels(endpoint, method),
        REQUESTS.labels(endpoint, method, str(status_code)),
    )


def record_sweep(duration_ms: float, transitions: int) -> None:
    """Observe one timeout sweep's duration and count its transitions."""
    SWEEP_DURATION.observe(duration_ms / 1000)
    SWEEP_TRANSITIONS.inc(transitions)
