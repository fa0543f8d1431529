"""External ping results: rule 3 of DESIGN section 2.

A ping counts only when the device's heartbeat is stale; a fresh heartbeat wins
and the result is answered as ignored. An unreachable result moves a stale but
still connected device to temporarily_offline early (source `external_service`);
a reachable result never connects a device, it is recorded as diagnosis.

Each result is one short transaction: a conditional UPDATE that matches only if
neither the device's revision nor its last heartbeat moved since it was judged.
A heartbeat that commits first therefore makes the update miss, and the result
is judged again against the fresh row, so it cannot undo that heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Row, or_, select, update

from fleet import rules
from fleet.errors import Contention, DeviceNotFound, FleetError
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import Source, Status
from fleet.services.devices import MAX_ATTEMPTS, thresholds_of
from fleet.services.events import record_events, status_event

SNAPSHOT_COLUMNS = (
    Device.id,
    Device.uid,
    Device.status,
    Device.revision,
    Device.last_heartbeat_at,
    Device.heartbeat_interval_seconds,
    Device.grace_period_seconds,
    Device.disconnect_after_seconds,
)
MAX_PAGE = 500

REACHABLE = "reachable, app silent"
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class PingResult:
    uid: str
    reachable: bool
    latency_ms: float | None
    checked_at: datetime | None = None


@dataclass(frozen=True)
class PingOutcome:
    uid: str
    applied: bool
    reason: str
    status: str
    status_changed: bool = False


def apply_ping(result: PingResult, now: datetime, actor: str | None = None) -> PingOutcome:
    """Apply one ping result; DeviceNotFound for an unknown uid."""
    outcome = apply_pings([result], now, actor)[0]
    if isinstance(outcome, FleetError):
        raise outcome
    return outcome


def apply_pings(
    results: list[PingResult], now: datetime, actor: str | None = None
) -> list[PingOutcome | FleetError]:
    """Apply results in order, each in its own transaction; one answer (or error) per result.

    1. Read every named device in one SELECT.
    2. Per result: judge it with `rules.judge_ping`, then write the diagnosis (and any
       status change with its event) by a conditional UPDATE, and commit.
    3. When the UPDATE misses because a heartbeat or another writer got there first,
       re-read that device and judge again.
    """
    uids = {result.uid for result in results}
    rows = db.session.execute(select(*SNAPSHOT_COLUMNS).where(Device.uid.in_(uids))).all()
    db.session.rollback()  # release the read snapshot before the per-item transactions
    snapshots = {row.uid: row for row in rows}
    answers: list[PingOutcome | FleetError] = []
    for result in results:
        snapshot = snapshots.get(result.uid)
        if snapshot is None:
            missing = DeviceNotFound(f"no device with uid {result.uid!r}", {"uid": result.uid})
            answers.append(missing)
            continue
        try:
            outcome, snapshots[result.uid] = _apply_one(snapshot, result, now, actor)
        except FleetError as error:
            db.session.rollback()
            answers.append(error)
            continue
        answers.append(outcome)
    return answers


def _apply_one(
    snapshot: Row, result: PingResult, now: datetime, actor: str | None
) -> tuple[PingOutcome, Row]:
    for _ in range(MAX_ATTEMPTS):
        thresholds = thresholds_of(snapshot)
        verdict = rules.judge_ping(
            now, snapshot.last_heartbeat_at, thresholds, Status(snapshot.status), result.reachable
        )
        if not verdict.applied:
            return PingOutcome(snapshot.uid, False, verdict.reason, snapshot.status), snapshot
        values = _diagnosis_values(result, now)
        events = []
        if verdict.new_status is not None:
            values.update(
                status=verdict.new_status,
                status_reason=verdict.reason,
                status_source=Source.EXTERNAL_SERVICE,
                status_changed_at=now,
                revision=snapshot.revision + 1,
            )
            age = rules.heartbeat_age(now, snapshot.last_heartbeat_at)
            events.append(
                status_event(
                    snapshot.id,
                    snapshot.uid,
                    snapshot.status,
                    verdict.new_status,
                    reason=verdict.reason,
                    source=Source.EXTERNAL_SERVICE,
                    now=now,
                    age=age,
                    actor=actor,
                )
            )
        if _write_if_unchanged(snapshot, values):
            record_events(events)
            db.session.commit()
            status = verdict.new_status or snapshot.status
            changed = verdict.new_status is not None
            return PingOutcome(snapshot.uid, True, verdict.reason, status, changed), snapshot
        db.session.rollback()
        snapshot = _read_snapshot(snapshot.id)
    raise Contention("the device is being updated concurrently; retry shortly")


def _diagnosis_values(result: PingResult, now: datetime) -> dict[str, Any]:
    # The ping service's clock is not trusted further than ours: no checks from the future.
    checked_at = now if result.checked_at is None else min(result.checked_at, now)
    return {
        "ping_reachable": result.reachable,
        "ping_latency_ms": result.latency_ms,
        "ping_checked_at": checked_at,
        "ping_received_at": now,
        "changed_at": now,
    }


def _write_if_unchanged(snapshot: Row, values: dict[str, Any]) -> bool:
    """Update only if neither the state (revision) nor the heartbeat moved since we read."""
    # A heartbeat to an already connected device does not bump the revision, so
    # the heartbeat time is part of the condition too.
    result = db.session.execute(
        update(Device)
        .where(
            Device.id == snapshot.id,
            Device.revision == snapshot.revision,
            Device.last_heartbeat_at.is_not_distinct_from(snapshot.last_heartbeat_at),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _read_snapshot(device_id: int) -> Row:
    row = db.session.execute(select(*SNAPSHOT_COLUMNS).where(Device.id == device_id)).one_or_none()
    if row is None:
        raise DeviceNotFound("device no longer exists")
    return row


# --- whom to ping ----------------------------------------------------------------


@dataclass(frozen=True)
class PingTarget:
    uid: str
    address: str
    status: str
    last_heartbeat_at: datetime | None
    ping_reachable: bool | None
    ping_checked_at: datetime | None


@dataclass(frozen=True)
class PingTargets:
    items: list[PingTarget]
    next_after: str | None  # pass as `after` for the next page; None on the last page


def devices_needing_ping(now: datetime, limit: int = 100, after: str | None = None) -> PingTargets:
    """Devices with a stale heartbeat, a known address, and no ping received recently.

    Pages are keyed by uid (`after`), not by offset: the set shrinks while the ping
    service posts results, and an offset would then skip devices.
    """
    limit = max(1, min(limit, MAX_PAGE))
    recheck = now - timedelta(seconds=current_app.config["PING_RECHECK_SECONDS"])
    query = (
        select(
            Device.uid,
            Device.last_address,
            Device.status,
            Device.last_heartbeat_at,
            Device.ping_reachable,
            Device.ping_checked_at,
        )
        .where(
            Device.last_address.is_not(None),
            or_(Device.status != Status.CONNECTED, Device.offline_due_at < now),
            or_(Device.ping_received_at.is_(None), Device.ping_received_at < recheck),
        )
        .order_by(Device.uid)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Device.uid > after)
    rows = db.session.execute(query).all()
    items = [
        PingTarget(
            row.uid,
            row.last_address,
            row.status,
            row.last_heartbeat_at,
            row.ping_reachable,
            row.ping_checked_at,
        )
        for row in rows[:limit]
    ]
    return PingTargets(items, items[-1].uid if len(rows) > limit else None)


def ping_diagnosis(device: Any) -> str | None:
    """What the last ping says, as staff see it; None if none arrived since the last heartbeat."""
    if device.ping_reachable is None or device.ping_received_at is None:
        return None
    heard = device.last_heartbeat_at
    if heard is not None and device.ping_received_at < heard:
        return None
    return REACHABLE if device.ping_reachable else UNREACHABLE
