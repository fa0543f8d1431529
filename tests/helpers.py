"""Assertion helpers shared by the tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from fleet.extensions import db
from fleet.models import Device
from fleet.services import device_state
from fleet.services.heartbeats import find_device_by_hash
from fleet.tokens import hash_token

EVENTS_SQL = (
    "SELECT e.kind, e.from_status, e.to_status, e.source FROM device_event e "
    "JOIN device d ON d.id = e.device_id WHERE d.uid = :uid ORDER BY e.id"
)


def device_row(uid: str) -> Device:
    """The device as stored now, bypassing the session's identity map."""
    db.session.expire_all()
    return device_state.get_device(uid)


def snapshot_of(token: str) -> Any:
    """The heartbeat snapshot of the device holding `token`, as the heartbeat reads it."""
    return find_device_by_hash(hash_token(token))


def events_of(uid: str) -> list[tuple[Any, ...]]:
    """(from, to, source) of the device's status events, oldest first."""
    rows = db.session.execute(text(EVENTS_SQL), {"uid": uid}).all()
    return [(row.from_status, row.to_status, row.source) for row in rows if row.kind == "status"]


def event_kinds(uid: str) -> list[str]:
    """The kinds of all the device's events, oldest first."""
    return [row.kind for row in db.session.execute(text(EVENTS_SQL), {"uid": uid})]


HEARTBEAT = "/api/devices/heartbeat"


def beat(client: Any, token: str, **body: Any) -> Any:
    """POST a heartbeat with `body` as JSON, the way a device sends it."""
    return client.post(HEARTBEAT, json=body, headers={"Authorization": f"Bearer {token}"})
