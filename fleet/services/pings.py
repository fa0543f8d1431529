"""External ping results: rule 3 of DESIGN section 2.

A ping counts only when the device's heartbeat is stale; a fresh heartbeat wins
and the result is answered as ignored. An unreachable result moves a stale but
still connected device to temporarily_offline early (source `external_service`);
a reachable result never connects a device, it is recorded as diagnosis.

Every result is written by a conditional UPDATE that matches only if neither the
device's revision nor its last heartbeat moved since it was judged. A heartbeat
that commits first makes the update miss, and the result is judged again against
the fresh row, so a ping can never undo a heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import and_, bindparam, or_, select, update

from fleet import metrics, rules
from fleet.errors import Contention, DeviceNotFound, FleetError
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import Source, Status
from fleet.services.device_state import retry_on_conflict, thresholds_of
from fleet.services.events import Event, record_events, status_event
from fleet.timeutil import UTCDateTime

MAX_PAGE = 500

REACHABLE = "reachable, app silent"
UNREACHABLE = "unreachable"


class Snapshot(NamedTuple):
    """What judging a ping needs to know about a device."""

    id: int
    uid: str
    status: str
    revision: int
    last_heartbeat_at: datetime | None
    heartbeat_interval_seconds: int | None
    grace_period_seconds: int | None
    disconnect_after_seconds: int | None


SNAPSHOT_COLUMNS = tuple(getattr(Device, name) for name in Snapshot._fields)

# Built once: a batch runs these hundreds of times, and building an ORM statement
# costs more than executing it. The SET clause comes from each call's parameters.
_UNCHANGED = and_(
    Device.id == bindparam("seen_id"),
    Device.revision == bindparam("seen_revision"),
    # A heartbeat to an already connected device does not bump the revision, so
    # the heartbeat time is part of the condition too.
    Device.last_heartbeat_at.is_not_distinct_from(bindparam("seen_heartbeat", type_=UTCDateTime())),
)
_WRITE_WAITING = update(Device).where(_UNCHANGED)
# Skips a row another transaction holds instead of waiting for it (SQLite has no
# row locks and drops the clause): never waiting while holding other rows, a
# batch cannot deadlock with a sweep.
_WRITE_SKIPPING = update(Device).where(
    Device.id
    == select(Device.id).where(_UNCHANGED).with_for_update(skip_locked=True).scalar_subquery()
)


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


@dataclass(frozen=True)
class _Written:
    outcome: PingOutcome
    snapshot: Snapshot  # the device as it is after the write
    event: Event | None = None


def apply_ping(result: PingResult, now: datetime, actor: str | None = None) -> PingOutcome:
    """Apply one ping result; DeviceNotFound for an unknown uid."""
    outcome = apply_pings([result], now, actor)[0]
    if isinstance(outcome, FleetError):
        raise outcome
    return outcome


def apply_pings(
    results: list[PingResult], now: datetime, actor: str | None = None
) -> list[PingOutcome | FleetError]:
    """Apply results in order; one answer (or error) per result.

    1. Read every named device in one SELECT.
    2. In one transaction, judge each result with `rules.judge_ping` and write it by
       a conditional UPDATE that skips a row another writer holds or changed since
       the read; write the status events; commit once.
    3. Apply each skipped result (and any later one for its device) alone: read the
       device afresh, judge, write by a conditional UPDATE that may wait, commit.
    """
    uids = {result.uid for result in results}
    rows = db.session.execute(select(*SNAPSHOT_COLUMNS).where(Device.uid.in_(uids)))
    snapshots = {row.uid: Snapshot(*row) for row in rows}
    answers: list[PingOutcome | FleetError | None] = [None] * len(results)
    events: list[Event] = []
    deferred: set[str] = set()
    for index, result in enumerate(results):
        snapshot = snapshots.get(result.uid)
        if snapshot is None:
            answers[index] = _not_found(result.uid)
            continue
        written = None if result.uid in deferred else _try_apply(snapshot, result, now, actor)
        if written is None:
            deferred.add(result.uid)
            continue
        answers[index], snapshots[result.uid] = written.outcome, written.snapshot
        events.extend([written.event] if written.event else [])
    record_events(events)
    db.session.commit()
    final = [
        _apply_alone(result, now, actor) if answer is None else answer
        for result, answer in zip(results, answers, strict=True)
    ]
    for result, answer in zip(results, final, strict=True):
        if isinstance(answer, PingOutcome):
            metrics.record_ping_result(answer.applied, result.reachable)
    return final


def _not_found(uid: str) -> DeviceNotFound:
    return DeviceNotFound(f"no device with uid {uid!r}", {"uid": uid})


def _apply_alone(result: PingResult, now: datetime, actor: str | None) -> PingOutcome | FleetError:
    def attempt(_: int) -> PingOutcome | None:
        row = db.session.execute(
            select(*SNAPSHOT_COLUMNS).where(Device.uid == result.uid)
        ).one_or_none()
        if row is None:
            raise _not_found(result.uid)
        written = _try_apply(Snapshot(*row), result, now, actor, wait=True)
        if written is None:
            return None
        record_events([written.event] if written.event else [])
        db.session.commit()
        return written.outcome

    # A batch answers each result, errors included, rather than raising.
    try:
        return retry_on_conflict(attempt)
    except (DeviceNotFound, Contention) as error:
        return error


def _try_apply(
    snapshot: Snapshot, result: PingResult, now: datetime, actor: str | None, wait: bool = False
) -> _Written | None:
    """Judge and write one result; None when the device moved on since `snapshot` was read."""
    verdict = rules.judge_ping(
        now,
        snapshot.last_heartbeat_at,
        thresholds_of(snapshot),
        Status(snapshot.status),
        result.reachable,
    )
    if not verdict.applied:
        return _Written(PingOutcome(snapshot.uid, False, verdict.reason, snapshot.status), snapshot)
    values = _diagnosis_values(result, now)
    if verdict.new_status is None:
        if not _write_if_unchanged(snapshot, values, wait):
            return None
        return _Written(PingOutcome(snapshot.uid, True, verdict.reason, snapshot.status), snapshot)
    after = snapshot._replace(status=verdict.new_status, revision=snapshot.revision + 1)
    values.update(
        status=after.status,
        status_reason=verdict.reason,
        status_source=Source.EXTERNAL_SERVICE,
        status_changed_at=now,
        revision=after.revision,
    )
    if not _write_if_unchanged(snapshot, values, wait):
        return None
    outcome = PingOutcome(snapshot.uid, True, verdict.reason, after.status, True)
    event = status_event(
        snapshot.id,
        snapshot.uid,
        snapshot.status,
        after.status,
        reason=verdict.reason,
        source=Source.EXTERNAL_SERVICE,
        now=now,
        age=rules.heartbeat_age(now, snapshot.last_heartbeat_at),
        actor=actor,
    )
    return _Written(outcome, after, event)


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


def _write_if_unchanged(snapshot: Snapshot, values: dict[str, Any], wait: bool) -> bool:
    """Update only if neither the state (revision) nor the heartbeat moved since the read."""
    seen = {
        "seen_id": snapshot.id,
        "seen_revision": snapshot.revision,
        "seen_heartbeat": snapshot.last_heartbeat_at,
    }
    statement = _WRITE_WAITING if wait else _WRITE_SKIPPING
    result = db.session.connection().execute(statement, {**values, **seen})
    return result.rowcount == 1


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
