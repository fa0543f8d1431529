"""The one place that writes the event log and its structured log lines.

Every status change goes through `record_events` inside the transaction that
made it, so a transition and its event commit or roll back together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from fleet import metrics
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.rules import Source

log = structlog.get_logger("pulseboard.events")


class EventKind(StrEnum):
    STATUS = "status"
    REGISTERED = "registered"
    RE_ENROLLED = "re_enrolled"
    RE_ENROLMENT_ALLOWED = "re_enrolment_allowed"
    RECONNECT_REQUESTED = "reconnect_requested"
    RECONNECT_DELIVERED = "reconnect_delivered"
    RECONNECT_EXPIRED = "reconnect_expired"
    SETTINGS_CHANGED = "settings_changed"
    COMMAND_REQUESTED = "command_requested"
    COMMAND_REPLACED = "command_replaced"
    COMMAND_DELIVERED = "command_delivered"
    COMMAND_ACKNOWLEDGED = "command_acknowledged"
    COMMAND_EXPIRED = "command_expired"
    COMMAND_UNACKNOWLEDGED = "command_unacknowledged"
    SCREENSHOT_UPLOADED = "screenshot_uploaded"
    # The device's expected-off state changed; details {"expected_off": "off_hours" |
    # "maintenance" | None}. With the status events it fully determines availability.
    EXPECTED_OFF = "expected_off"
    # A device still silent when its site opened (past its grace): an ordinary outage from
    # then on, "expected at 08:00, silent since 21:03". Its status is unchanged, so it is
    # not a status event; the alert rules are evaluated from it as from one.
    SILENT_AT_OPENING = "silent_at_opening"


class ExpectedOff(StrEnum):
    OFF_HOURS = "off_hours"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Event:
    device_id: int
    uid: str
    kind: str
    reason: str
    source: str
    created_at: datetime
    from_status: str | None = None
    to_status: str | None = None
    actor: str | None = None
    heartbeat_age_seconds: float | None = None
    details: dict[str, Any] | None = None
    # Filled in by `record_events` for status events: the device's expected-off state then.
    expected_off: str | None = None

    def row(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, which dominated large sweeps.
        return {name: getattr(self, name) for name in _ROW_FIELDS}


_ROW_FIELDS = tuple(f.name for f in fields(Event) if f.name != "uid")


def status_event(
    device_id: int,
    uid: str,
    from_status: str | None,
    to_status: str,
    *,
    reason: str,
    source: str,
    now: datetime,
    age: float | None,
    actor: str | None = None,
) -> Event:
    """An event for a status transition."""
    return Event(
        device_id=device_id,
        uid=uid,
        kind=EventKind.STATUS,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        source=source,
        actor=actor,
        created_at=now,
        heartbeat_age_seconds=None if age is None else round(age, 3),
    )


def expected_off_event(
    device_id: int,
    uid: str,
    state: str | None,
    *,
    reason: str,
    now: datetime,
    source: str = Source.SYSTEM,
    actor: str | None = None,
) -> Event:
    """An event for a change of the device's expected-off state (None: expected on again)."""
    return Event(
        device_id=device_id,
        uid=uid,
        kind=EventKind.EXPECTED_OFF,
        reason=reason,
        source=source,
        actor=actor,
        created_at=now,
        details={"expected_off": state},
    )


_RECONNECT_OUTCOMES = {
    EventKind.RECONNECT_DELIVERED: (Source.DEVICE, "reconnect request delivered with a heartbeat"),
    EventKind.RECONNECT_EXPIRED: (
        Source.SYSTEM,
        "reconnect request expired before a heartbeat collected it",
    ),
}


def reconnect_event(device_id: int, uid: str, kind: str, now: datetime) -> Event:
    """An event for a reconnect request's end: delivered with a heartbeat, or expired."""
    source, reason = _RECONNECT_OUTCOMES[kind]
    return Event(
        device_id=device_id, uid=uid, kind=kind, reason=reason, source=source, created_at=now
    )


def record_events(events: list[Event]) -> None:
    """Insert the events in the current transaction; each is logged once it commits."""
    if not events:
        return
    events = _flag_expected_off(events)
    events = _evaluate_alerts(events)
    connection = db.session.connection()
    if len(events) >= COPY_AT_LEAST and connection.dialect.name == "postgresql":
        _copy_events(connection, events)
    else:
        # Core executemany: faster than the ORM bulk path, RETURNING-driven
        # insertmanyvalues, or multi-row VALUES (docs/benchmarks.md, Timeout sweep).
        connection.execute(insert(DeviceEvent.__table__), [event.row() for event in events])
    _tally_availability(events)
    db.session.info.setdefault(_UNLOGGED, []).extend(events)


def _flag_expected_off(events: list[Event]) -> list[Event]:
    """Mark the status events of devices expected off now: they count no flap and raise no alert.

    One indexed read per batch of events, only when a batch holds a status change.
    """
    # Imported here: the queries module reads the event kinds defined above.
    from fleet.services.queries import among

    ids = {event.device_id for event in events if event.kind == EventKind.STATUS}
    if not ids:
        return events
    off = dict(
        db.session.execute(
            select(Device.id, Device.expected_off).where(
                among(Device.id, ids), Device.expected_off.is_not(None)
            )
        ).all()
    )
    if not off:
        return events
    return [
        dataclasses.replace(event, expected_off=off[event.device_id])
        if event.kind == EventKind.STATUS and event.device_id in off
        else event
        for event in events
    ]


def _evaluate_alerts(events: list[Event]) -> list[Event]:
    # Imported here: the alerts read devices through services that record events.
    from fleet.services.alerts.evaluate import evaluate_in_transaction

    return evaluate_in_transaction(events)


def _tally_availability(events: list[Event]) -> None:
    # Imported here, like the alerts: the rollups read devices and belong to their own package.
    from fleet.services.availability.tally import tally_events

    tally_events(events)


# A sweep after an outage writes thousands of events at once; PostgreSQL's COPY
# takes them far faster than one INSERT each (docs/benchmarks.md, Timeout sweep).
COPY_AT_LEAST = 50


def _copy_events(connection: Connection, events: list[Event]) -> None:
    columns = ", ".join(_ROW_FIELDS)
    cursor = connection.connection.dbapi_connection.cursor()
    with cursor, cursor.copy(f"COPY device_event ({columns}) FROM STDIN") as copy:
        for event in events:
            copy.write_row([_copy_value(getattr(event, name)) for name in _ROW_FIELDS])


def _copy_value(value: Any) -> Any:
    # Imported here: only PostgreSQL copies rows, and the driver is not loaded on SQLite.
    from psycopg.types.json import Json

    return Json(value) if isinstance(value, dict) else value


_UNLOGGED = "pulseboard_unlogged_events"
COMMAND_EVENT_KINDS = frozenset(kind for kind in EventKind if kind.startswith("command_"))


@sa_event.listens_for(Session, "after_commit")
def _log_committed_events(session: Session) -> None:
    # A log line for a transition that rolled back would be a lie, so lines wait for the commit.
    for event in session.info.pop(_UNLOGGED, []):
        log.info(
            "status_changed" if event.kind == EventKind.STATUS else event.kind,
            uid=event.uid,
            from_status=event.from_status,
            to_status=event.to_status,
            reason=event.reason,
            source=event.source,
            actor=event.actor,
            heartbeat_age_seconds=event.heartbeat_age_seconds,
        )
        if event.kind == EventKind.STATUS:
            metrics.record_transition(event.from_status, event.to_status, event.source)
        elif event.kind in COMMAND_EVENT_KINDS:
            metrics.record_command_event(event.kind, event.details)


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back_events(session: Session) -> None:
    session.info.pop(_UNLOGGED, None)
