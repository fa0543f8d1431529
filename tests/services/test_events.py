"""The event log: written in the transaction that made the change, logged only once it commits."""

import json

import pytest
from sqlalchemy import select

from fleet.extensions import db
from fleet.models import DeviceEvent
from fleet.rules import Source
from fleet.services.device_state import get_device
from fleet.services.enrolment import register_device
from fleet.services.events import (
    COPY_AT_LEAST,
    Event,
    EventKind,
    reconnect_event,
    record_events,
    status_event,
)
from fleet.timeutil import utcnow

T0 = utcnow().replace(microsecond=0)


def json_lines(output):
    return [json.loads(line) for line in output().splitlines()]


def an_event(device_id, n=0):
    return status_event(
        device_id,
        "kiosk-1",
        "connected",
        "temporarily_offline",
        reason=f"test {n}",
        source=Source.SYSTEM,
        now=T0,
        age=61.23456,
    )


@pytest.fixture
def pending(logged):
    """An app logging JSON, with one status event recorded and not yet committed."""
    app, output = logged("json")
    with app.app_context():
        register_device("kiosk-1", T0)
        record_events([an_event(get_device("kiosk-1").id)])
        yield lambda: [line for line in json_lines(output) if line["event"] == "status_changed"]


def test_a_committed_event_is_stored_and_logged_once(pending):
    assert pending() == []
    db.session.commit()
    stored = db.session.execute(select(DeviceEvent).where(DeviceEvent.kind == "status"))
    assert stored.scalar_one().heartbeat_age_seconds == 61.235
    assert [(c["uid"], c["from_status"], c["to_status"], c["source"]) for c in pending()] == [
        ("kiosk-1", "connected", "temporarily_offline", "system")
    ]


def test_an_event_rolled_back_is_neither_stored_nor_logged(pending):
    db.session.rollback()
    db.session.commit()  # a later commit must not log what was rolled back
    assert db.session.execute(select(DeviceEvent.kind)).scalars().all() == ["registered"]
    assert pending() == []


def test_a_large_batch_with_details_is_stored_in_full(make_device):
    # Past COPY_AT_LEAST events PostgreSQL takes them by COPY; the JSON details must survive.
    device = make_device("kiosk-1", now=T0)
    events = [
        Event(
            device_id=device.id,
            uid="kiosk-1",
            kind=EventKind.RECONNECT_REQUESTED,
            reason=f"request {n}",
            source=Source.OPERATOR,
            actor="ops",
            created_at=T0,
            details={"n": n, "bulk": True},
        )
        for n in range(COPY_AT_LEAST + 5)
    ]
    record_events(events)
    db.session.commit()
    rows = db.session.execute(
        select(DeviceEvent)
        .where(DeviceEvent.kind == "reconnect_requested")
        .order_by(DeviceEvent.id)
    ).scalars()
    assert [(row.reason, row.actor, row.details) for row in rows] == [
        (f"request {n}", "ops", {"n": n, "bulk": True}) for n in range(COPY_AT_LEAST + 5)
    ]


def test_no_events_is_no_write(app):
    record_events([])
    assert db.session.execute(select(DeviceEvent)).first() is None


def test_a_reconnect_ends_delivered_by_the_device_or_expired_by_the_system(app):
    delivered = reconnect_event(1, "kiosk-1", EventKind.RECONNECT_DELIVERED, T0)
    expired = reconnect_event(1, "kiosk-1", EventKind.RECONNECT_EXPIRED, T0)
    assert (delivered.source, expired.source) == ("device", "system")
    assert "delivered" in delivered.reason and "expired" in expired.reason


def test_event_kinds_are_the_stored_words():
    assert EventKind.STATUS == "status" and isinstance(EventKind.STATUS, str)
    assert "reconnect_requested" in list(EventKind)
