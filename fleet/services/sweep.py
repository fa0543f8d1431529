"""The timeout sweep: rule 2 of DESIGN section 2.

A sweep costs work in proportion to the devices that change: each device stores
its deadlines, so finding the due ones is an indexed range query, and each kind
of transition is one set-based `UPDATE ... RETURNING` (in chunks, to keep
transactions short). The `WHERE` clause carries the whole condition, so a
heartbeat that commits first moves the deadline and the row no longer matches:
on PostgreSQL the update re-checks it after waiting for the row lock.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import Integer, String, and_, delete, func, literal, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from fleet import metrics, rules
from fleet.extensions import db
from fleet.models import Device, SweepRun, TelemetrySample
from fleet.rules import ReconnectState, Source, Status
from fleet.services import locks
from fleet.services.commands import expire_commands
from fleet.services.events import Event, EventKind, reconnect_event, record_events, status_event
from fleet.services.queries import among
from fleet.services.schedule_tick import run_schedule_tick
from fleet.timeutil import UTCDateTime, utcnow

log = structlog.get_logger("pulseboard.sweep")

CHUNK = 5000


@dataclass(frozen=True)
class Change:
    uid: str
    from_status: str
    to_status: str
    heartbeat_age_seconds: float | None


@dataclass
class SweepReport:
    started_at: datetime
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)
    reconnects_expired: int = 0
    commands_settled: int = 0
    expected_off_changes: int = 0
    duration_ms: float = 0.0
    skipped: bool = False
    skip_reason: str | None = None

    @property
    def transitions(self) -> int:
        return len(self.changes)

    def counts(self) -> dict[str, int]:
        """Transitions by kind, e.g. {"connected -> temporarily_offline": 12}."""
        return dict(Counter(f"{c.from_status} -> {c.to_status}" for c in self.changes))

    def summary(self) -> dict[str, Any]:
        return {
            "transitions": self.transitions,
            "by_kind": self.counts(),
            "reconnects_expired": self.reconnects_expired,
            "commands_settled": self.commands_settled,
            "expected_off_changes": self.expected_off_changes,
            "duration_ms": round(self.duration_ms, 1),
            "dry_run": self.dry_run,
            "skipped": self.skipped,
        }


# The three moves, in the order they must run: a device past D leaves for
# disconnected straight from whichever tier it is in.
MOVES = (
    (Status.CONNECTED, Status.DISCONNECTED),
    (Status.TEMPORARILY_OFFLINE, Status.DISCONNECTED),
    (Status.CONNECTED, Status.TEMPORARILY_OFFLINE),
)


def _due(from_status: Status, to_status: Status, now: datetime) -> ColumnElement[bool]:
    if to_status is Status.DISCONNECTED:
        return and_(Device.status == from_status, Device.disconnect_due_at < now)
    # A device also past its disconnect deadline belongs to the disconnect move,
    # so that a dry run, which moves nothing, does not count it twice.
    return and_(
        Device.status == from_status,
        Device.offline_due_at < now,
        Device.disconnect_due_at >= now,
    )


class _SecondsBetween(FunctionElement):
    """Whole seconds from one timestamp column or value to another, in SQL."""

    type = Integer()
    inherit_cache = True


@compiles(_SecondsBetween)
def _seconds_between_sqlite(element: _SecondsBetween, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND((julianday({end}) - julianday({start})) * 86400) AS INTEGER)"


@compiles(_SecondsBetween, "postgresql")
def _seconds_between_postgresql(element: _SecondsBetween, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND(EXTRACT(EPOCH FROM ({end} - {start}))) AS INTEGER)"


def _stored_reason(to_status: Status, now: datetime) -> ColumnElement[str]:
    """Why the device moved, naming its silence and the threshold it passed.

    The threshold is read from the deadline the device was stored with, not
    from today's settings: it is the one that applied when the device went
    over, even if the fleet's defaults changed since (a restart with other
    settings). Built in SQL because it differs per device; the event written
    for the move takes the same text from the UPDATE's RETURNING.
    """
    heard = Device.last_heartbeat_at
    silence = _SecondsBetween(heard, literal(now, UTCDateTime())).cast(String)
    if to_status is Status.DISCONNECTED:
        limit = _SecondsBetween(heard, Device.disconnect_due_at).cast(String)
        reason = "no heartbeat for " + silence + " s (disconnect after " + limit + " s)"
    else:
        limit = _SecondsBetween(heard, Device.offline_due_at).cast(String)
        reason = (
            "no heartbeat for " + silence + " s (offline after " + limit + " s: interval + grace)"
        )
    return func.coalesce(reason, literal(rules.NEVER_HEARD))


def enforce_timeouts(
    now: datetime, dry_run: bool = False, keep_alive: Callable[[], None] | None = None
) -> SweepReport:
    """Move every device whose heartbeat is overdue to the tier its age implies.

    1. For each move (connected -> disconnected, temporarily offline -> disconnected,
       connected -> temporarily offline), update the due rows in chunks, returning them.
    2. Write one status event (source `system`) per returned row, in the same transaction.
    0. The schedule tick: devices' expected-off state from operating hours and windows.
    3. Expire pending reconnects and settle commands past their TTL, and prune old
       telemetry samples.
    With `dry_run`, compute the same report with SELECTs and write nothing.
    `keep_alive` is called after each committed chunk (run_sweep renews its lock there).
    """
    clock = time.perf_counter()
    report = SweepReport(started_at=now, dry_run=dry_run)
    if not dry_run:
        # First, so the status events below are recorded with the expected-off state of `now`.
        report.expected_off_changes = _schedule_tick(now)
    for from_status, to_status in MOVES:
        report.changes.extend(_apply_move(from_status, to_status, now, dry_run, keep_alive))
    report.reconnects_expired = _expire_reconnects(now, dry_run)
    if not dry_run:
        report.commands_settled = expire_commands(now)
        _prune_telemetry(now)
        db.session.commit()
    report.duration_ms = (time.perf_counter() - clock) * 1000
    return report


CHANGE_COLUMNS = (Device.id, Device.uid, Device.last_heartbeat_at)


def _apply_move(
    from_status: Status,
    to_status: Status,
    now: datetime,
    dry_run: bool,
    keep_alive: Callable[[], None] | None = None,
) -> list[Change]:
    if dry_run:
        query = select(*CHANGE_COLUMNS).where(_due(from_status, to_status, now))
        return [_change(row, from_status, to_status, now) for row in db.session.execute(query)]
    # Chunks commit one by one, so the report keeps those done before a failure.
    changes: list[Change] = []
    try:
        _move_in_chunks(from_status, to_status, now, changes, keep_alive)
        return changes
    except SQLAlchemyError as error:
        if getattr(error, "connection_invalidated", False):
            raise
        db.session.rollback()
        log.error("sweep_chunk_failed", move=f"{from_status}->{to_status}", error=str(error))
        return changes + _move_row_by_row(from_status, to_status, now, keep_alive)


def _move_in_chunks(
    from_status: Status,
    to_status: Status,
    now: datetime,
    changes: list[Change],
    keep_alive: Callable[[], None] | None,
) -> None:
    """Move the due devices chunk by chunk, appending each committed chunk to `changes`."""
    while True:
        # Ids first, then an update by primary key: an `IN (SELECT ... LIMIT)` lets a
        # planner with stale statistics re-run the subquery per row (seconds, not ms).
        chunk = select(Device.id).where(_due(from_status, to_status, now)).limit(CHUNK)
        ids = list(db.session.execute(chunk).scalars())
        if not ids:
            return
        rows = _move(from_status, to_status, now, among(Device.id, ids))
        changes.extend(_change(row, from_status, to_status, now) for row in rows)
        if keep_alive is not None:
            keep_alive()
        if len(ids) < CHUNK:
            return


def _move_row_by_row(
    from_status: Status,
    to_status: Status,
    now: datetime,
    keep_alive: Callable[[], None] | None,
) -> list[Change]:
    """The slow path after a failed chunk: one bad row is logged and skipped, never fatal."""
    due_ids = db.session.execute(select(Device.id).where(_due(from_status, to_status, now)))
    changes: list[Change] = []
    for device_id in list(due_ids.scalars()):
        try:
            rows = _move(from_status, to_status, now, Device.id == device_id)
        except SQLAlchemyError as error:
            db.session.rollback()
            log.error("sweep_row_failed", device_id=device_id, error=str(error))
            continue
        changes.extend(_change(row, from_status, to_status, now) for row in rows)
        if keep_alive is not None:
            keep_alive()
    return changes


def _move(
    from_status: Status, to_status: Status, now: datetime, scope: ColumnElement[bool]
) -> list:
    """Move the due devices within `scope`, write their events, and commit."""
    rows = db.session.execute(
        update(Device)
        .where(scope, _due(from_status, to_status, now))
        .values(
            status=to_status,
            status_reason=_stored_reason(to_status, now),
            status_source=Source.SYSTEM,
            status_changed_at=now,
            # Stamped at the chunk's own time, not the sweep's start: the dashboard's
            # poll cursor trails the clock by seconds, and a long sweep's later
            # chunks would otherwise commit behind it and never be redrawn.
            changed_at=utcnow(),
            revision=Device.revision + 1,
        )
        .returning(*CHANGE_COLUMNS, Device.status_reason)
        .execution_options(synchronize_session=False)
    ).all()
    record_events([_event(row, from_status, to_status, now) for row in rows])
    db.session.commit()
    return rows


def _change(row: Any, from_status: Status, to_status: Status, now: datetime) -> Change:
    return Change(row.uid, from_status, to_status, rules.heartbeat_age(now, row.last_heartbeat_at))


def _event(row: Any, from_status: Status, to_status: Status, now: datetime) -> Event:
    age = rules.heartbeat_age(now, row.last_heartbeat_at)
    return status_event(
        row.id,
        row.uid,
        from_status,
        to_status,
        reason=row.status_reason,
        source=Source.SYSTEM,
        now=now,
        age=age,
    )


def _expire_reconnects(now: datetime, dry_run: bool) -> int:
    due = and_(Device.reconnect_state == ReconnectState.PENDING, Device.reconnect_expires_at <= now)
    if dry_run:
        return db.session.execute(select(func.count()).select_from(Device).where(due)).scalar_one()
    rows = db.session.execute(
        update(Device)
        .where(due)
        .values(
            reconnect_state=ReconnectState.EXPIRED, revision=Device.revision + 1, changed_at=now
        )
        .returning(Device.id, Device.uid)
        .execution_options(synchronize_session=False)
    ).all()
    record_events(
        [reconnect_event(row.id, row.uid, EventKind.RECONNECT_EXPIRED, now) for row in rows]
    )
    return len(rows)


def _schedule_tick(now: datetime) -> int:
    """The schedule tick; a failure is logged and the sweep goes on (timeouts matter more)."""
    try:
        report = run_schedule_tick(now)
    except SQLAlchemyError as error:
        if getattr(error, "connection_invalidated", False):
            raise
        db.session.rollback()
        log.error("schedule_tick_failed", error=str(error))
        return 0
    return report.changed + report.silent_at_opening


def _prune_telemetry(now: datetime) -> None:
    retention = timedelta(seconds=current_app.config["TELEMETRY_RETENTION_SECONDS"])
    db.session.execute(delete(TelemetrySample).where(TelemetrySample.recorded_at < now - retention))


SWEEP_LOCK = "timeout-sweep"
# Long enough for one chunk of work between renewals, whatever the interval.
SWEEP_LOCK_MIN_TTL_SECONDS = 5
SWEEP_HISTORY = timedelta(days=7)


def sweep_lock_ttl() -> int:
    """The sweep lock's lease: one sweep interval, renewed after every chunk.

    A sweep that is alive keeps it however long it runs; one killed outright
    (SIGKILL, a lost machine) stops blocking the next sweep within an interval.
    """
    return max(current_app.config["SWEEP_INTERVAL_SECONDS"], SWEEP_LOCK_MIN_TTL_SECONDS)


def run_sweep(now: datetime, runner: str) -> SweepReport:
    """One scheduled sweep: never two at once, and each run recorded.

    Takes the sweep lock without waiting; when another sweep holds it, this one
    is recorded as skipped and returns at once. A sweep that finds its lock
    lapsed when it renews it (it stalled past the lease) stops there: its
    committed chunks stand and the sweep now holding the lock does the rest.
    """
    with locks.held(SWEEP_LOCK, sweep_lock_ttl(), now) as lock:
        if not lock:
            report = SweepReport(
                started_at=now, skipped=True, skip_reason="another sweep is running"
            )
        else:
            try:
                report = enforce_timeouts(now, keep_alive=lock.renew)
            except locks.LeaseLost:
                db.session.rollback()
                report = SweepReport(
                    started_at=now, skipped=True, skip_reason="the sweep lock lapsed mid-way"
                )
    _record_run(report, runner)
    log.info("sweep_finished", runner=runner, **report.summary())
    return report


def _record_run(report: SweepReport, runner: str) -> None:
    db.session.add(
        SweepRun(
            started_at=report.started_at,
            duration_ms=report.duration_ms,
            transitions=report.transitions,
            skipped=report.skipped,
            runner=runner,
            details={"by_kind": report.counts(), "reconnects_expired": report.reconnects_expired},
        )
    )
    db.session.execute(
        delete(SweepRun).where(SweepRun.started_at < report.started_at - SWEEP_HISTORY)
    )
    db.session.commit()
    if not report.skipped:
        metrics.record_sweep(report.duration_ms, report.transitions)


def last_sweep() -> SweepRun | None:
    """The newest sweep that actually ran (not skipped)."""
    return db.session.execute(
        select(SweepRun)
        .where(SweepRun.skipped.is_(False))
        .order_by(SweepRun.started_at.desc())
        .limit(1)
    ).scalar_one_or_none()
