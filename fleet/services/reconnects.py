"""Reconnect requests: staff ask one device, or many spread over time, to reconnect.

A request is delivered with the device's next heartbeat (fleet.services.heartbeats)
or expires with the sweep (fleet.services.sweep). Each public function is one
unit of work that commits itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, update

from fleet.extensions import db
from fleet.models import Device
from fleet.rules import ReconnectState, Source
from fleet.services.device_state import get_device
from fleet.services.events import Event, EventKind, record_events


def request_reconnect(
    uid: str, actor: str, now: datetime, delay_seconds: int | None = None
) -> Device:
    """Ask one device to reconnect on its next heartbeat."""
    device = get_device(uid)
    delay = (
        current_app.config["RECONNECT_DELAY_SECONDS"] if delay_seconds is None else delay_seconds
    )
    store_reconnects([(device.id, device.uid, delay)], actor, now)
    db.session.commit()
    db.session.refresh(device)
    return device


def store_reconnects(
    requests: list[tuple[int, str, int]],
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Store pending reconnects (one statement for all) and their events, uncommitted.

    Bumping the revision makes a heartbeat that read the device before this
    request retry, so it cannot overwrite the request it never saw.
    """
    expires_at = now + timedelta(seconds=current_app.config["RECONNECT_TTL_SECONDS"])
    statement = (
        update(Device)
        .where(Device.id == bindparam("device_id"))
        .values(
            revision=Device.revision + 1,
            reconnect_state=ReconnectState.PENDING,
            reconnect_requested_at=now,
            reconnect_requested_by=actor,
            reconnect_delay_seconds=bindparam("delay"),
            reconnect_expires_at=expires_at,
            reconnect_delivered_at=None,
            changed_at=now,
        )
    )
    db.session.connection().execute(
        statement, [{"device_id": device_id, "delay": delay} for device_id, _, delay in requests]
    )
    record_events(
        [
            Event(
                device_id=device_id,
                uid=uid,
                kind=EventKind.RECONNECT_REQUESTED,
                reason=f"reconnect requested with a {delay}s delay",
                source=Source.OPERATOR,
                actor=actor,
                created_at=now,
                details={**(details or {}), "delay_seconds": delay},
            )
            for device_id, uid, delay in requests
        ]
    )
