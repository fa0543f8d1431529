"""Enrolment: a device registers (or re-registers, rotating its token), or an admin adds one.

The fleet's enrolment key lets a new uid in. A known uid enrols again only
with proof that it is the same device: its current token, or an operator's
leave (`allow_re_enrolment`, for a kiosk that lost its token), used once.
Without it the key alone would let anyone holding it take over any device.

Each public function is one unit of work that commits or rolls back itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError

from fleet.errors import DeviceNotFound, EnrolmentRefused, InvalidInput, Unauthorized
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import Source, Status, Thresholds
from fleet.services.availability import tally
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
    current_token: str | None = None,
) -> Enrolment:
    """Enrol a device, or re-enrol a known uid with a fresh token; either way it is connected.

    A known uid needs `current_token` (the token it holds now) or an
    operator's leave; EnrolmentRefused otherwise.
    """
    token = new_token(DEVICE_TOKEN_PREFIX)
    profile = {"name": name, "site": site, "app_version": app_version}
    profile = {key: value for key, value in profile.items() if value is not None}

    def attempt(_: int) -> Enrolment | None:
        existing = db.session.execute(
            select(*SNAPSHOT_COLUMNS, *_LEAVE_COLUMNS, Device.site).where(Device.uid == uid)
        ).one_or_none()
        if existing is None:
            if _insert_registered(uid, token, profile, now, address):
                return _enrolment(uid, token, True, defaults=fleet_defaults())
        else:
            proof = _proof_of_identity(existing, current_token, now)
            if _re_enrol(existing, token, profile, now, address, proof):
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


_LEAVE_COLUMNS = (Device.reenrolment_allowed_until, Device.reenrolment_allowed_by)


@dataclass(frozen=True)
class _Proof:
    """How a known uid showed it is the same device."""

    reason: str
    actor: str | None = None


def _proof_of_identity(snapshot: Row, current_token: str | None, now: datetime) -> _Proof:
    if current_token and secrets_match(snapshot.token_hash, hash_token(current_token)):
        return _Proof("re-enrolled with its current token; token rotated")
    allowed_until = snapshot.reenrolment_allowed_until
    if allowed_until is not None and now < allowed_until:
        by = snapshot.reenrolment_allowed_by
        return _Proof(f"re-enrolled on leave from {by}; token rotated", actor=by)
    raise EnrolmentRefused(
        f"{snapshot.uid!r} is enrolled already: enrolling it again needs its current token "
        "(Authorization: Bearer) or an operator's leave (flask devices allow-re-enrolment)",
        {"uid": snapshot.uid},
    )


def _re_enrol(
    snapshot: Row,
    token: str,
    profile: dict[str, Any],
    now: datetime,
    address: str | None,
    proof: _Proof,
) -> bool:
    """Rotate a known device's token; the old token and any leave end with this commit."""
    values = {
        "token_hash": hash_token(token),
        "last_heartbeat_at": now,
        "last_address": address,
        "revision": snapshot.revision + 1,
        "changed_at": now,
        "reenrolment_allowed_until": None,
        "reenrolment_allowed_by": None,
        **profile,
        **deadline_values(now, thresholds_of(snapshot)),
    }
    events = [
        Event(
            device_id=snapshot.id,
            uid=snapshot.uid,
            kind=EventKind.RE_ENROLLED,
            reason=proof.reason,
            source=Source.DEVICE,
            actor=proof.actor,
            created_at=now,
            details={"address": address},
        )
    ]
    if snapshot.status != Status.CONNECTED:
        connect(snapshot, "re-enrolled", now, values, events)
    if not compare_and_set(snapshot, values):
        return False
    if "site" in profile:
        tally.move_site(snapshot.id, snapshot.site, profile["site"])
    record_events(events)
    db.session.commit()
    return True


def allow_re_enrolment(uid: str, actor: str, now: datetime, minutes: int) -> datetime:
    """Let `uid` enrol once more without its token within `minutes`; when that leave ends."""
    if not 1 <= minutes <= MAX_LEAVE_MINUTES:
        raise InvalidInput(f"minutes must be between 1 and {MAX_LEAVE_MINUTES}")
    until = now + timedelta(minutes=minutes)

    def attempt(_: int) -> datetime | None:
        snapshot = db.session.execute(
            select(*SNAPSHOT_COLUMNS).where(Device.uid == uid)
        ).one_or_none()
        if snapshot is None:
            raise DeviceNotFound(f"no device with uid {uid!r}")
        values = {
            "reenrolment_allowed_until": until,
            "reenrolment_allowed_by": actor,
            "revision": snapshot.revision + 1,
            "changed_at": now,
        }
        if not compare_and_set(snapshot, values):
            return None
        record_events([_leave_event(snapshot, actor, now, until)])
        db.session.commit()
        return until

    return retry_on_conflict(attempt, "the device is being updated concurrently; retry shortly")


MAX_LEAVE_MINUTES = 7 * 24 * 60


def _leave_event(snapshot: Row, actor: str, now: datetime, until: datetime) -> Event:
    return Event(
        device_id=snapshot.id,
        uid=snapshot.uid,
        kind=EventKind.RE_ENROLMENT_ALLOWED,
        reason=f"may enrol again without its token until {until:%Y-%m-%d %H:%M} UTC",
        source=Source.OPERATOR,
        actor=actor,
        created_at=now,
    )


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
