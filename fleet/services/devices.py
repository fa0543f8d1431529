"""Device lifecycle: enrolment, heartbeats and reconnect requests.

Each public function is one unit of work that commits or rolls back itself.
Races are settled by the database: writers compare-and-set on `Device.revision`
(`UPDATE ... WHERE id = :id AND revision = :seen`) and retry with a fresh read
when another writer won, so concurrent heartbeats, sweeps, pings and reconnect
requests end in one consistent state and each reconnect is delivered once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Row, bindparam, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from fleet import rules
from fleet.errors import AlreadyExists, Contention, DeviceNotFound, Unauthorized
from fleet.extensions import db
from fleet.models import Device, TelemetrySample
from fleet.rules import ReconnectState, Source, Status, Thresholds
from fleet.services.events import Event, EventKind, record_events, status_event
from fleet.services.token_cache import TokenCache
from fleet.tokens import DEVICE_TOKEN_PREFIX, hash_token, hashes_match, new_token, secrets_match

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
    config = current_app.config
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


def find_device_by_token(token: str) -> Row | None:
    """The heartbeat snapshot of the device holding `token`, or None."""
    token_hash = hash_token(token)
    row = db.session.execute(
        select(*SNAPSHOT_COLUMNS).where(Device.token_hash == token_hash)
    ).one_or_none()
    if row is None or not hashes_match(row.token_hash, token):
        return None
    return row


def _read_snapshot(device_id: int) -> Row:
    row = db.session.execute(select(*SNAPSHOT_COLUMNS).where(Device.id == device_id)).one_or_none()
    if row is None:
        raise DeviceNotFound("device no longer exists")
    return row


def _compare_and_set(device_id: int, seen_revision: int, values: dict[str, Any]) -> bool:
    """Apply `values` only if nobody changed the device's state since we read it."""
    result = db.session.execute(
        update(Device)
        .where(Device.id == device_id, Device.revision == seen_revision)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# --- heartbeats --------------------------------------------------------------


@dataclass(frozen=True)
class Telemetry:
    battery_level: float | None = None
    wifi_strength: int | None = None
    app_version: str | None = None
    uptime_seconds: int | None = None
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class HeartbeatResult:
    status: Status
    server_time: datetime
    heartbeat_interval_seconds: int
    should_reconnect: bool
    reconnect_delay_seconds: int


@dataclass
class _HeartbeatPlan:
    values: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    deliver_reconnect: bool = False
    sample_telemetry: bool = False


def record_heartbeat(
    snapshot: Row, telemetry: Telemetry, now: datetime, address: str | None = None
) -> HeartbeatResult:
    """Accept a heartbeat: the device becomes connected and may collect a pending reconnect.

    1. Plan the update from the snapshot read with the token lookup.
    2. Compare-and-set on the device's revision; on a lost race, re-read and re-plan.
    3. In the same transaction write the events and any telemetry sample, then commit.
    """
    for _ in range(MAX_ATTEMPTS):
        plan = _plan_heartbeat(snapshot, telemetry, now, address)
        if _compare_and_set(snapshot.id, snapshot.revision, plan.values):
            record_events(plan.events)
            if plan.sample_telemetry:
                _sample_telemetry(snapshot.id, telemetry, now)
            db.session.commit()
            return HeartbeatResult(
                status=Status.CONNECTED,
                server_time=now,
                heartbeat_interval_seconds=thresholds_of(snapshot).interval,
                should_reconnect=plan.deliver_reconnect,
                reconnect_delay_seconds=(snapshot.reconnect_delay_seconds or 0)
                if plan.deliver_reconnect
                else 0,
            )
        db.session.rollback()
        snapshot = _read_snapshot(snapshot.id)
    raise Contention("the device is being updated concurrently; retry shortly")


def accept_heartbeat(
    device_id: int, token: str, telemetry: Telemetry, now: datetime, address: str | None = None
) -> HeartbeatResult:
    """A heartbeat from the holder of `token`, whose device the token cache named.

    The common case (connected, nothing pending, no overrides, no sample due) is
    one UPDATE; anything else, or a token rotated meanwhile, takes the
    compare-and-set path of `record_heartbeat`.
    """
    token_hash = hash_token(token)
    if _fast_heartbeat(device_id, token_hash, telemetry, now, address):
        db.session.commit()
        return HeartbeatResult(Status.CONNECTED, now, fleet_defaults().interval, False, 0)
    snapshot = find_device_by_token(token)
    if snapshot is None:
        token_cache().forget(token_hash)
        raise Unauthorized("missing, unknown or rotated device token")
    return record_heartbeat(snapshot, telemetry, now, address)


def _fast_heartbeat(
    device_id: int, token_hash: str, telemetry: Telemetry, now: datetime, address: str | None
) -> bool:
    """The whole heartbeat as one conditional UPDATE; False when the device needs more."""
    defaults = fleet_defaults()
    reported = {key: value for key, value in asdict(telemetry).items() if value is not None}
    visible = [
        getattr(Device, key).is_distinct_from(reported[key])
        for key in ("battery_level", "wifi_strength", "app_version")
        if key in reported
    ]
    values: dict[str, Any] = {
        "last_heartbeat_at": now,
        "last_address": address,
        **reported,
        **deadline_values(now, defaults),
    }
    if visible:
        values["changed_at"] = case((or_(*visible), now), else_=Device.changed_at)
    sample_due_before = now - timedelta(seconds=current_app.config["TELEMETRY_SAMPLE_SECONDS"])
    result = db.session.execute(
        update(Device)
        .where(
            Device.id == device_id,
            Device.token_hash == token_hash,
            Device.status == Status.CONNECTED,
            or_(Device.reconnect_state.is_(None), Device.reconnect_state != ReconnectState.PENDING),
            Device.heartbeat_interval_seconds.is_(None),
            Device.grace_period_seconds.is_(None),
            Device.disconnect_after_seconds.is_(None),
            Device.telemetry_sampled_at > sample_due_before,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def token_cache() -> TokenCache:
    """This app's cache of token hash -> device id."""
    return current_app.extensions["pulseboard_tokens"]


def authenticate_device(token: str) -> int | None:
    """The id of the device holding `token` (cached per process), or None."""
    return token_cache().device_id(hash_token(token))


def _plan_heartbeat(
    snapshot: Row, telemetry: Telemetry, now: datetime, address: str | None
) -> _HeartbeatPlan:
    thresholds = thresholds_of(snapshot)
    # Fields a heartbeat leaves out keep their last reported value.
    reported = {key: value for key, value in asdict(telemetry).items() if value is not None}
    values: dict[str, Any] = {
        "last_heartbeat_at": now,
        "last_address": address,
        **reported,
        **deadline_values(now, thresholds),
    }
    plan = _HeartbeatPlan(values=values)
    visible_change = any(
        key in reported and reported[key] != getattr(snapshot, key)
        for key in ("battery_level", "wifi_strength", "app_version")
    )
    state_change = _plan_status(plan, snapshot, now, thresholds)
    state_change |= _plan_reconnect(plan, snapshot, now)
    if state_change:
        values["revision"] = snapshot.revision + 1
    if state_change or visible_change:
        values["changed_at"] = now
    last_sample = snapshot.telemetry_sampled_at
    sample_every = current_app.config["TELEMETRY_SAMPLE_SECONDS"]
    if last_sample is None or (now - last_sample).total_seconds() >= sample_every:
        plan.sample_telemetry = True
        values["telemetry_sampled_at"] = now
    return plan


def _plan_status(
    plan: _HeartbeatPlan, snapshot: Row, now: datetime, thresholds: Thresholds
) -> bool:
    if snapshot.status == Status.CONNECTED:
        return False
    age = rules.heartbeat_age(now, snapshot.last_heartbeat_at)
    plan.values.update(
        status=Status.CONNECTED,
        status_reason="heartbeat received",
        status_source=Source.DEVICE,
        status_changed_at=now,
    )
    plan.events.append(
        status_event(
            snapshot.id,
            snapshot.uid,
            snapshot.status,
            Status.CONNECTED,
            reason="heartbeat received",
            source=Source.DEVICE,
            now=now,
            age=age,
        )
    )
    return True


def _plan_reconnect(plan: _HeartbeatPlan, snapshot: Row, now: datetime) -> bool:
    state = rules.reconnect_state_at(now, snapshot.reconnect_state, snapshot.reconnect_expires_at)
    if snapshot.reconnect_state != ReconnectState.PENDING:
        return False
    if state is ReconnectState.EXPIRED:
        plan.values["reconnect_state"] = ReconnectState.EXPIRED
        plan.events.append(_reconnect_event(snapshot, EventKind.RECONNECT_EXPIRED, now))
        return True
    plan.deliver_reconnect = True
    plan.values.update(reconnect_state=ReconnectState.DELIVERED, reconnect_delivered_at=now)
    plan.events.append(_reconnect_event(snapshot, EventKind.RECONNECT_DELIVERED, now))
    return True


def _reconnect_event(snapshot: Row, kind: str, now: datetime) -> Event:
    reasons = {
        EventKind.RECONNECT_DELIVERED: "reconnect request delivered with a heartbeat",
        EventKind.RECONNECT_EXPIRED: "reconnect request expired before a heartbeat collected it",
    }
    return Event(
        device_id=snapshot.id,
        uid=snapshot.uid,
        kind=kind,
        reason=reasons[kind],
        source=Source.DEVICE if kind == EventKind.RECONNECT_DELIVERED else Source.SYSTEM,
        created_at=now,
    )


def _sample_telemetry(device_id: int, telemetry: Telemetry, now: datetime) -> None:
    db.session.execute(
        insert(TelemetrySample).values(
            device_id=device_id,
            recorded_at=now,
            battery_level=telemetry.battery_level,
            wifi_strength=telemetry.wifi_strength,
        )
    )


# --- enrolment ----------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    uid: str
    token: str
    created: bool
    status: Status
    heartbeat_interval_seconds: int


def check_enrollment_key(presented: str | None) -> None:
    """Refuse enrolment unless the fleet's key was presented."""
    expected = current_app.config["ENROLLMENT_KEY"]
    if not presented or not secrets_match(expected, presented):
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
        values.update(
            status=Status.CONNECTED,
            status_reason="re-enrolled",
            status_source=Source.DEVICE,
            status_changed_at=now,
        )
        age = rules.heartbeat_age(now, snapshot.last_heartbeat_at)
        events.append(
            status_event(
                snapshot.id,
                snapshot.uid,
                snapshot.status,
                Status.CONNECTED,
                reason="re-enrolled",
                source=Source.DEVICE,
                now=now,
                age=age,
            )
        )
    if not _compare_and_set(snapshot.id, snapshot.revision, values):
        return False
    record_events(events)
    db.session.commit()
    token_cache().forget(snapshot.token_hash)
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
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyExists(f"a device with uid {uid!r} already exists") from None
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
    device_ids: list[int], actor: str, now: datetime, spread_seconds: int | None = None
) -> int:
    """Ask many devices to reconnect, spreading delays so a site does not reconnect at once."""
    if not device_ids:
        return 0
    spread = (
        current_app.config["BULK_RECONNECT_SPREAD_SECONDS"]
        if spread_seconds is None
        else spread_seconds
    )
    base = current_app.config["RECONNECT_DELAY_SECONDS"]
    rows = db.session.execute(
        select(Device.id, Device.uid).where(Device.id.in_(device_ids)).order_by(Device.id)
    ).all()
    count = len(rows)
    requests = [
        (row.id, row.uid, base + (index * spread) // count) for index, row in enumerate(rows)
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
