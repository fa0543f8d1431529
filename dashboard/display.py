"""How values look on the dashboard: status words, ping diagnosis, times, URLs.

Every page needs these helpers, so they register when the app is built; the
services a few of them read are imported where they are called, so that
building the app (every `flask` command) does not load the models and queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import request, url_for
from markupsafe import Markup, escape

from dashboard import bp
from fleet.rules import ReconnectState, Status, reconnect_state_at

STATUS_WORDS = {
    Status.CONNECTED: "Connected",
    Status.TEMPORARILY_OFFLINE: "Temporarily offline",
    Status.DISCONNECTED: "Disconnected",
}
SOURCE_WORDS = {
    "device": "device",
    "system": "timeout sweep",
    "external_service": "external ping",
    "operator": "operator",
    "alerts": "alert rules",
}


@bp.app_context_processor
def listings() -> dict[str, Any]:
    """The lists the templates offer, from their one source: statuses, sorts, page sizes."""
    from fleet.services.history import TIMELINE_SPANS
    from fleet.services.queries import EXPECTED_OFF_FILTERS, PER_PAGE_CHOICES, SORTS

    return {
        "STATUSES": tuple(Status),
        "SORTS": SORTS,
        "PER_PAGE_CHOICES": PER_PAGE_CHOICES,
        "TIMELINE_SPANS": TIMELINE_SPANS,
        "EXPECTED_OFF_FILTERS": EXPECTED_OFF_FILTERS,
    }


@bp.app_template_filter("status_word")
def status_word(status: str | None) -> str:
    """The status as people read it."""
    return STATUS_WORDS.get(status, status or "not yet enrolled")  # type: ignore[call-overload]


EXPECTED_OFF_WORDS = {"off_hours": "Off hours", "maintenance": "Maintenance", "none": "Expected on"}


@bp.app_template_filter("expected_off_word")
def expected_off_word(state: str | None) -> str:
    """An expected-off state (or the filter's "none") as people read it."""
    return EXPECTED_OFF_WORDS.get(state or "none", state or "")


@bp.app_template_filter("source_word")
def source_word(source: str | None) -> str:
    """Who made the change, in words."""
    return SOURCE_WORDS.get(source or "", source or "")


# Kinds whose name does not read as words once the underscores are spaces.
KIND_WORDS = {"re_enrolled": "re-enrolled", "re_enrolment_allowed": "re-enrolment allowed"}


@bp.app_template_filter("kind_word")
def kind_word(kind: str) -> str:
    """An event's kind as people read it ("re-enrolled", not "re enrolled")."""
    return KIND_WORDS.get(kind, kind.replace("_", " "))


@bp.app_template_filter("ping_word")
def ping_word(device: Any) -> str:
    """The ping service's diagnosis; a dash when no ping came since the last heartbeat."""
    from fleet.services.pings import REACHABLE, ping_diagnosis

    diagnosis = ping_diagnosis(device)
    if diagnosis is None:
        return "—"
    if diagnosis == REACHABLE and device.ping_latency_ms:
        return f"{diagnosis} ({device.ping_latency_ms:.0f} ms)"
    return diagnosis


@bp.app_template_filter("duration")
def duration(seconds: int) -> str:
    """A configured span in the largest whole unit: "30 s", "5 min", "24 h"."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@bp.app_template_filter("elapsed")
def elapsed(seconds: float) -> str:
    """A measured span in its two largest units: "35 s", "12 min 5 s", "3 h 20 min"."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"


@bp.app_template_filter("age_note")
def age_note(event: Any) -> str:
    """What an event's heartbeat age means, in words; empty where its reason says it already.

    A heartbeat that reconnects a device comes "after 35 s of silence" (not a
    "heartbeat 35 s old"); the sweep's reasons name the silence themselves.
    """
    age = event.heartbeat_age_seconds
    if age is None or event.source == "system":
        return ""
    if event.to_status == Status.CONNECTED:
        return f"after {elapsed(age)} of silence"
    return f"last heartbeat {elapsed(age)} before"


@bp.app_template_filter("clock")
def clock(moment: datetime | None) -> str:
    """The UTC time of day, to the second, for times inside the device page's window."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%H:%M:%S")


@bp.app_template_filter("iso")
def iso(moment: datetime | None) -> str:
    """Machine-readable UTC time for `<time datetime>`."""
    return "" if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


@bp.app_template_filter("utc")
def utc(moment: datetime | None) -> str:
    """The exact UTC time shown on hover."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_global("ago")
def ago(moment: datetime | None, cap: int | None = None) -> Markup:
    """A relative time rendered by the page's script; `cap` bounds it for live devices."""
    if moment is None:
        return Markup('<span class="muted">never</span>')
    cap_attr = f' data-cap="{int(cap)}"' if cap else ""
    return Markup(
        f'<time class="ago" datetime="{iso(moment)}" title="{utc(moment)}"{cap_attr}>'
        f"{escape(utc(moment))}</time>"
    )


@bp.app_template_global("url_with")
def url_with(**changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    view_args = request.view_args or {}
    # A query key that repeats a path argument (?uid=...) or url_for's own
    # parameters (endpoint, _external, _scheme) must not reach url_for.
    args = {
        key: value
        for key, value in request.args.items()
        if key not in changes
        and key not in view_args
        and key != "endpoint"
        and not key.startswith("_")
    }
    args.update({key: value for key, value in changes.items() if value not in (None, "")})
    return url_for(request.endpoint or "dashboard.fleet", **view_args, **args)


@bp.app_template_global("reconnect_state")
def reconnect_state(device: Any, now: datetime) -> ReconnectState | None:
    """The reconnect state staff should see (a pending request past its TTL is expired)."""
    return reconnect_state_at(now, device.reconnect_state, device.reconnect_expires_at)


@bp.app_template_global("offline_after")
def offline_after(device: Any) -> int:
    """I + G for this device: how old a heartbeat can be while it is connected."""
    from fleet.services.device_state import thresholds_of

    return thresholds_of(device).offline_after
