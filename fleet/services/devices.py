"""Device lifecycle: enrolment, heartbeats and reconnect requests.

Each public function is one unit of work that commits or rolls back itself.
Races are settled by the database: writers compare-and-set on `Device.revision`
(`UPDATE ... WHERE id = :id AND revision = :seen`) and retry with a fresh read
when another writer won, so concurrent heartbeats, sweeps, pings and reconnect
requests end in one consistent state and each reconnect is delivered once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from fleet import rules
from fleet.context import current_application
from fleet.errors import Contention, DeviceNotFound, Unauthorized
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import ReconnectState, Source, Status, Thresholds
from fleet.services.commit import commit_unique
from fleet.services.events import Event, EventKind, record_events, status_event
from fleet.tokens import DEVICE_TOKEN_PREFIX, hash_token, new_token, secrets_match

MAX_ATTEMPTS = 8

# What a heartbeat needs to know about a device: read with the token lookup,
# so the common heartbeat is one SELECT and one UPDATE.
SNAPSHOT_COLUMNS = (
    Device.id,
    Device.uid,
    Device.token_hash,
    Device.status,
    Device.revision,
    Device.last_heartbeat_at,
    Device.heartbeat_interval_seconds,
    Device.grace_period_seconds,
    Device.disconnect_after_seconds,
    Device.reconnect_state,
    Device.reconnect_expires_at,
    Device.reconnect_delay_seconds,
    Device.battery_level,
    Device.wifi_strength,
    Device.app_version,
    Device.telemetry_sampled_at,
)


def fleet_defaults() -> Thresholds:
    """The fleet-wide thresholds from config."""
    config = current_application().config
    return Thresholds(
        interval=config["HEARTBEAT_INTERVAL_SECONDS"],
        grace=config["GRACE_PERIOD_SECONDS"],
        disconnect_after=config["DISCONNECT_AFTER_SECONDS"],
    )


def thresholds_of(device: Any) -> Thresholds:
    """A device's thresholds: fleet defaults with its overrides (works on rows and models)."""
    return rules.resolve_thresholds(
        fleet_defaults(),
        device.heartbeat_interval_seconds,
        device.grace_period_seconds,
        device.disconnect_after_seconds,
    )


def deadline_values(last_heartbeat_at: datetime | None, thresholds: Thresholds) -> dict[str, Any]:
    """The stored deadline columns that follow from a heartbeat time."""
    deadlines = rules.deadlines_for(last_heartbeat_at, thresholds)
    return {"offline_due_at": deadlines.offline_at, "disconnect_due_at": deadlines.disconnect_at}


def read_snapshot(device_id: int) -> Row:
    """Re-read a device after a lost compare-and-set, locking its row.

    The optimistic first try costs no lock; once a writer has lost a race, the
    row lock (PostgreSQL; SQLite serialises writers anyway) makes sure it
    cannot keep losing to a busy device.
    """
    query = select(*SNAPSHOT_COLUMNS).where(Device.id == device_id).with_for_update()
    row = db.session.execute(query).one_or_none()
    if row is None:
        raise DeviceNotFound("device no longer exists")
    return row


def compare_and_set(seen: Any, values: dict[str, Any], *, same_heartbeat: bool = True) -> bool:
    """Apply `values` only if nobody changed the device since `seen` was read.

    A heartbeat that changes no state does not bump the revision, so by default
    the heartbeat time is compared too: deadlines computed from an older
    heartbeat must never overwrite a newer one's. A heartbeat, which sets its
    own time and deadlines, passes `same_heartbeat=False`.
    """
    conditions = [Device.id == seen.id, Device.revision == seen.revision]
    if same_heartbeat:
        conditions.append(Device.last_heartbeat_at.is_not_distinct_from(seen.last_heartbeat_at))
    result = db.session.execute(
        update(Device)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def connect(seen: Any, reason: str, now: datetime, values: dict[str, Any], events: list) -> None:
    """Plan the move to connected that only the device itself can cause (DESIGN rule 1)."""
    values.update(
        status=Status.CONNECTED,
        status_reason=reason,
        status_source=Source.DEVICE,
        status_changed_at=now,
    )
    age = rules.heartbeat_age(now, seen.last_heartbeat_at)
    events.append(
        status_event(
            seen.id, seen.uid, seen.status, Status.CONNECTED,
            reason=reason, source=Source.DEVICE, now=now, age=age,
        )
    )  # fmt: skip


# --- enrolment ----------------------------------------------------------------


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
    for _ in range(MAX_ATTEMPTS):
        existing = db.session.execute(
            select(*SNAPSHOT_COLUMNS).where(Device.uid == uid)
        ).one_or_none()
        if existing is None:
            if _insert_registered(uid, token, profile, now, address):
                return _enrolment(uid, token, True, defaults=fleet_defaults())
        elif _re_enrol(existing, token, profile, now, address):
            return _enrolment(uid, token, False, defaults=thresholds_of(existing))
        db.session.rollback()
    raise Contention("the device is being enrolled concurrently; retry shortly")


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


# --- reconnect requests ---------------------------------------------------------


def get_device(uid: str) -> Device:
    """The device with `uid`, or DeviceNotFound."""
    device = db.session.execute(select(Device).where(Device.uid == uid)).scalar_one_or_none()
    if device is None:
        raise DeviceNotFound(f"no device with uid {uid!r}", {"uid": uid})
    return device


def request_reconnect(
    uid: str, actor: str, now: datetime, delay_seconds: int | None = None
) -> Device:
    """Ask one device to reconnect on its next heartbeat."""
    device = get_device(uid)
    delay = (
        current_app.config["RECONNECT_DELAY_SECONDS"] if delay_seconds is None else delay_seconds
    )
    _store_reconnects([(device.id, device.uid, delay)], actor, now)
    db.session.commit()
    db.session.refresh(device)
    return device


def request_bulk_reconnect(
    devices: Sequence[tuple[int, str]],
    actor: str,
    now: datetime,
    spread_seconds: int | None = None,
) -> int:
    """Ask these (id, uid) devices to reconnect, delays spread over them in the order given.

    Spreading the delays keeps a site from reconnecting all at once.
    """
    if not devices:
        return 0
    spread = (
        current_app.config["BULK_RECONNECT_SPREAD_SECONDS"]
        if spread_seconds is None
        else spread_seconds
    )
    base = current_app.config["RECONNECT_DELAY_SECONDS"]
    count = len(devices)
    requests = [
        (device_id, uid, base + (index * spread) // count)
        for index, (device_id, uid) in enumerate(devices)
    ]
    _store_reconnects(requests, actor, now, details={"bulk": True, "devices": count})
    db.session.commit()
    return count


def _store_reconnects(
    requests: list[tuple[int, str, int]],
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Store pending reconnects (one statement for all) and their events.

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
