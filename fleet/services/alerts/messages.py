"""What each notification says: rendered once, when it is queued, and stored in the outbox.

Every message names what happened (opened / reminder / resolved), the device
uids or the site, and links to the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app

from fleet.alert_models import NotificationKind, RuleKind

SHOWN_DEVICES = 5

_WHAT = {
    RuleKind.DISCONNECTED: "disconnected",
    RuleKind.NOT_CONNECTED: "not connected",
    RuleKind.FLAPPING: "flapping",
}
_EVENT = {
    NotificationKind.OPENED: "incident.opened",
    NotificationKind.REMINDER: "incident.reminder",
    NotificationKind.RESOLVED: "incident.resolved",
    NotificationKind.TEST: "channel.test",
    NotificationKind.MONITORING_GAP: "monitoring.gap",
}


@dataclass(frozen=True)
class IncidentFacts:
    """What a message about an incident needs, read at the moment it is queued."""

    id: int
    rule: str
    kind: str
    site: str | None
    device_uids: list[str]
    device_count: int
    site_size: int | None
    opened_at: datetime
    resolved_at: datetime | None = None
    still_down: list[str] | None = None


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def dashboard_url(path: str) -> str:
    return current_app.config["ALERT_DASHBOARD_URL"] + path


def _devices_line(uids: list[str], count: int) -> str:
    shown = ", ".join(uids[:SHOWN_DEVICES])
    more = count - min(len(uids), SHOWN_DEVICES)
    return shown + (f" and {more} more" if more > 0 else "")


def _subject(facts: IncidentFacts, kind: str) -> str:
    if facts.kind == RuleKind.SITE_OUTAGE:
        of = f" of {facts.site_size}" if facts.site_size else ""
        if kind == NotificationKind.RESOLVED:
            return f"site outage at {facts.site} is over ({facts.device_count}{of} were down)"
        return f"site outage at {facts.site}: {facts.device_count}{of} devices not connected"
    uid = facts.device_uids[0] if facts.device_uids else "a device"
    where = f" at {facts.site}" if facts.site else ""
    return f"{uid}{where} {_WHAT.get(facts.kind, facts.kind)}"


def incident_message(kind: str, facts: IncidentFacts) -> dict[str, Any]:
    """The stored payload of an opened, reminder or resolved notification."""
    label = {"opened": "OPENED", "reminder": "REMINDER", "resolved": "RESOLVED"}[kind]
    url = dashboard_url(f"/alerts#incident-{facts.id}")
    lines = [
        f"Rule: {facts.rule}",
        f"Devices: {_devices_line(facts.device_uids, facts.device_count)}",
        f"Opened: {_when(facts.opened_at)}",
    ]
    if kind == NotificationKind.RESOLVED:
        lines.append(f"Resolved: {_when(facts.resolved_at)}")
        if facts.still_down:
            lines.append(
                f"Still not connected: {_devices_line(facts.still_down, len(facts.still_down))}"
            )
    lines.append(f"Dashboard: {url}")
    return {
        "event": _EVENT[kind],
        "title": f"[Pulseboard] {label}: {_subject(facts, kind)}",
        "message": "\n".join(lines),
        "url": url,
        "incident": {
            "id": facts.id,
            "rule": facts.rule,
            "kind": facts.kind,
            "site": facts.site,
            "device_uids": facts.device_uids,
            "device_count": facts.device_count,
            "opened_at": _when(facts.opened_at),
            "resolved_at": _when(facts.resolved_at),
        },
    }


def channel_test_message(channel: str, now: datetime) -> dict[str, Any]:
    url = dashboard_url("/alerts/channels")
    return {
        "event": _EVENT[NotificationKind.TEST],
        "title": f"[Pulseboard] TEST: channel {channel} works",
        "message": f"A test message sent at {_when(now)} to channel {channel}.\nDashboard: {url}",
        "url": url,
        "incident": None,
    }


def gap_message(late_devices: int, late_by_seconds: float, now: datetime) -> dict[str, Any]:
    url = dashboard_url("/alerts")
    minutes = max(1, round(late_by_seconds / 60))
    return {
        "event": _EVENT[NotificationKind.MONITORING_GAP],
        "title": f"[Pulseboard] MONITORING GAP: status sweeps stopped for about {minutes} min",
        "message": (
            f"The timeout sweep did not run for about {minutes} min (was the worker down?). "
            f"{late_devices} device(s) crossed a threshold meanwhile; their incidents were "
            "opened without a message each.\n"
            f"Detected: {_when(now)}\nDashboard: {url}"
        ),
        "url": url,
        "incident": None,
    }
