"""Enrolment: a device registers (or re-registers, rotating its token), or an admin adds one.

Each public function is one unit of work that commits or rolls back itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError

from fleet.errors import Unauthorized
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import Source, Status, Thresholds
from fleet.services.commit import commit_unique
from fleet.services.device_state import (
    SNAPSHOT_COLUMNS,
    compare_and_set,
    connect,
    deadline_values,
    fleet_defaults,
    retry_on_conflict,
    thresholds_of,
)
from fleet.services.events import Event, EventKind, record_events
from fleet.tokens import DEVICE_TOKEN_PREFIX, hash_token, new_token, secrets_match


@dataclass(frozen=True)
class Enrolment:
    uid: str
    token: str
    created: bool
    status: Status
    heartbeat_interval_seconds: int


def check_enrollment_key(presented: Any) -> None:
    """Refuse enrolment unless the fleet's key was presented."""
    expected = current_app.config["ENROLLMENT_KEY"]
    if not isinstance(presented, str) or not presented or not secrets_match(expected, presented):
        raise Unauthorized("missing or wrong enrolment key")


def register_device(
    uid: str,
    now: datetime,
    *,
    name: str | None = None,
    site: str | None = None,
    app_version: str | None = None,
    address: str | None = None,
) -> Enrolment:
    """Enrol a device, or re-enrol a known uid with a fresh token; either way it is connected."""
    token = new_token(DEVICE_TOKEN_PREFIX)
    profile = {"name": name, "site": site, "app_version": app_version}
    profile = {key: value for key, value in profile.items() if value is not None}

    def attempt(_: int) -> Enrolment | None:
        existing = db.session.execute(
            select(*SNAPSHOT_COLUMNS).where(Device.uid == uid)
        ).one_or_none()
        if existing is None:
            if _insert_registered(uid, token, profile, now, address):
                return _enrolment(uid, token, True, defaults=fleet_defaults())
        elif _re_enrol(existing, token, profile, now, address):
            return _enrolment(uid, token, False, defaults=thresholds_of(existing))
        return None

    return retry_on_conflict(attempt, "the device is being enrolled concurrently; retry shortly")


def _enrolment(uid: str, token: str, created: bool, defaults: Thresholds) -> Enrolment:
    return Enrolment(uid, token, created, Status.CONNECTED, defaults.interval)


def _insert_registered(
    uid: str, token: str, profile: dict[str, Any], now: datetime, address: str | None
) -> bool:
    """Insert a new device; False when a concurrent enrolment of the same uid won."""
    device = Device(
        uid=uid,
        token_hash=hash_token(token),
        status=Status.CONNECTED,
        status_reason="registered",
        status_source=Source.DEVICE,
        status_changed_at=now,
        revision=0,
        last_heartbeat_at=now,
        last_address=address,
        changed_at=now,
        created_at=now,
        **profile,
        **deadline_values(now, fleet_defaults()),
    )
    db.session.add(device)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    record_events(
        [
            Event(
                device_id=device.id,
                uid=uid,
                kind=EventKind.REGISTERED,
                to_status=Status.CONNECTED,
                reason="registered",
                source=Source.DEVICE,
                created_at=now,
            )
        ]
    )
    db.session.commit()
    return True


def _re_enrol(
    snapshot: Row, token: str, profile: dict[str, Any], now: datetime, address: str | None
) -> bool:
    """Rotate a known device's token; the old token stops working with this commit."""
    values = {
        "token_hash": hash_token(token),
        "last_heartbeat_at": now,
        "last_address": address,
        "revision": snapshot.revision + 1,
        "changed_at": now,
        **profile,
        **deadline_values(now, thresholds_of(snapshot)),
    }
    events = [
        Event(
            device_id=snapshot.id,
            uid=snapshot.uid,
            kind=EventKind.RE_ENROLLED,
            reason="re-enrolled; token rotated",
            source=Source.DEVICE,
            created_at=now,
        )
    ]
    if snapshot.status != Status.CONNECTED:
        connect(snapshot, "re-enrolled", now, values, events)
    if not compare_and_set(snapshot, values):
        return False
    record_events(events)
    db.session.commit()
    return True


def add_device(uid: str, now: datetime, *, name: str | None = None, site: str | None = None) -> str:
    """Create a device for an administrator and return its token.

    The device has not spoken yet, so it starts disconnected; its first heartbeat
    connects it.
    """
    token = new_token(DEVICE_TOKEN_PREFIX)
    device = Device(
        uid=uid,
        name=name,
        site=site,
        token_hash=hash_token(token),
        status=Status.DISCONNECTED,
        status_reason="added by an administrator; no heartbeat yet",
        status_source=Source.SYSTEM,
        status_changed_at=now,
        revision=0,
        changed_at=now,
        created_at=now,
    )
    db.session.add(device)
    commit_unique(f"a device with uid {uid!r} already exists")
    return token
