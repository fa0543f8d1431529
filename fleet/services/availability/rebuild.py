"""Rebuilding the rollups from the raw events, and pruning old history.

`rebuild` is the repair tool (`flask reports rebuild [--since DATE]`): it folds
each device's retained events from its enrolment with the same code the
transactions use, replaces the rollups from `since` on, the outages that end
after it and the tallies, chunk by chunk, each chunk one transaction.
Events older than EVENT_RETENTION_DAYS are pruned, so a rebuild reaching back
past them starts each device in its first retained event's status, expected on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import delete, or_, select

from fleet.availability_models import (
    AvailabilityDay,
    AvailabilityHour,
    AvailabilitySiteHour,
    AvailabilityTally,
    Outage,
)
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.services.availability.fold import FOLDED_KINDS, State, change_of, initial_status
from fleet.services.availability.tally import (
    HOURLY_KEEP,
    UNKNOWN_START,
    Tally,
    Writes,
    advance,
    checkpoint,
    insert_ignoring,
    locked_tallies,
    outage_row,
    resum_site_hours,
    save,
    shift_site_hours,
    tally_row,
)

log = structlog.get_logger("pulseboard.availability")
CHUNK = 500
PRUNE_BATCH = 10_000


@dataclass
class RebuildReport:
    devices: int = 0
    events: int = 0


def rebuild(since: date | None = None, device_ids: list[int] | None = None) -> RebuildReport:
    """Recompute rollups, outages and tallies from the raw events, from `since` (or all) on."""
    since_at = None if since is None else datetime.combine(since, time(), tzinfo=UTC)
    report = RebuildReport()
    query = select(Device.id).order_by(Device.id)
    if device_ids is not None:
        query = query.where(Device.id.in_(device_ids))
    for ids in _chunks(query):
        report.events += _rebuild_chunk(ids, since_at)
        report.devices += len(ids)
        db.session.commit()
    if device_ids is None:
        # The chunks moved the site rows by what they replaced; this also mends any drift.
        resum_site_hours(since_at)
        db.session.commit()
    log.info("availability_rebuilt", since=str(since), devices=report.devices)
    return report


def _chunks(query: Any) -> Iterator[list[int]]:
    ids = list(db.session.execute(query).scalars())
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _rebuild_chunk(ids: list[int], since_at: datetime | None) -> int:
    # The tallies first: a transaction recording these devices' events waits for this one.
    locked_tallies(ids)
    events: dict[int, list[Any]] = defaultdict(list)
    rows = db.session.execute(
        select(DeviceEvent)
        .where(DeviceEvent.device_id.in_(ids), DeviceEvent.kind.in_(FOLDED_KINDS))
        .order_by(DeviceEvent.device_id, DeviceEvent.created_at, DeviceEvent.id)
    ).scalars()
    for row in rows:
        events[row.device_id].append(change_of(row))
    devices = db.session.execute(
        select(Device.id, Device.created_at, Device.status).where(Device.id.in_(ids))
    ).all()
    _forget(ids, since_at)
    writes = Writes.empty()
    for device in devices:
        changes = events.get(device.id, [])
        state = State(initial_status(changes, device.status))
        since = device.created_at if state.down else None
        if since is not None:
            writes.opened.append(outage_row(device.id, since, state.status, UNKNOWN_START))
        advance(Tally(device.id, device.created_at, state, since), changes, writes)
    _keep_from(writes, since_at)
    insert_ignoring(
        AvailabilityTally, [tally_row(t) for t in writes.tallies], conflict=["device_id"]
    )
    save(writes)
    return sum(len(changes) for changes in events.values())


def _forget(ids: list[int], since_at: datetime | None) -> None:
    """Delete what the rebuild replaces: rollups from `since_at`, outages ending after, tallies."""
    days, hours = AvailabilityDay.device_id.in_(ids), AvailabilityHour.device_id.in_(ids)
    outages = Outage.device_id.in_(ids)
    if since_at is not None:
        days &= AvailabilityDay.day >= since_at.date()
        hours &= AvailabilityHour.hour >= since_at
        outages &= or_(Outage.ended_at.is_(None), Outage.ended_at > since_at)
    # The site rows hold these hours too: take them away there before the rows go.
    shift_site_hours(ids, -1, since=since_at)
    for statement in (
        delete(AvailabilityDay).where(days),
        delete(AvailabilityHour).where(hours),
        delete(Outage).where(outages),
        delete(AvailabilityTally).where(AvailabilityTally.device_id.in_(ids)),
    ):
        db.session.execute(statement.execution_options(synchronize_session=False))


def _keep_from(writes: Writes, since_at: datetime | None) -> None:
    """Leave out of the writes what lies before `since_at`: those rows were kept."""
    if since_at is None:
        return
    writes.days = {k: v for k, v in writes.days.items() if k[1] >= since_at}  # type: ignore[assignment]
    writes.hours = {k: v for k, v in writes.hours.items() if k[1] >= since_at}  # type: ignore[assignment]
    ended_before = {(c["d"], c["s"]) for c in writes.closed if c["e"] <= since_at}
    writes.opened = [
        row for row in writes.opened if (row["device_id"], row["started_at"]) not in ended_before
    ]
    writes.closed = [c for c in writes.closed if (c["d"], c["s"]) not in ended_before]


@dataclass
class PruneReport:
    tallies_moved: int = 0
    events: int = 0
    days: int = 0
    hours: int = 0
    site_hours: int = 0
    outages: int = 0

    def summary(self) -> dict[str, int]:
        return vars(self)


def prune_history(now: datetime) -> PruneReport:
    """Move idle tallies on, then delete raw events, rollups and outages past their
    retention, in batches (a job)."""
    config = current_app.config
    events_before = now - timedelta(days=config["EVENT_RETENTION_DAYS"])
    rollups_before = (now - timedelta(days=config["ROLLUP_RETENTION_DAYS"])).date()
    report = PruneReport(
        tallies_moved=checkpoint(now),
        events=_in_batches(DeviceEvent, DeviceEvent.id, DeviceEvent.created_at < events_before),
        days=_delete(delete(AvailabilityDay).where(AvailabilityDay.day < rollups_before)),
        hours=_delete(delete(AvailabilityHour).where(AvailabilityHour.hour < now - HOURLY_KEEP)),
        site_hours=_delete(
            delete(AvailabilitySiteHour).where(AvailabilitySiteHour.hour < now - HOURLY_KEEP)
        ),
        outages=_delete(
            delete(Outage).where(
                Outage.ended_at < datetime.combine(rollups_before, time(), tzinfo=UTC)
            )
        ),
    )
    log.info("history_pruned", **report.summary())
    return report


def _in_batches(model: type, key: Any, condition: Any) -> int:
    """Delete matching rows PRUNE_BATCH at a time, each batch committed: no long lock."""
    total = 0
    while True:
        ids = list(db.session.execute(select(key).where(condition).limit(PRUNE_BATCH)).scalars())
        if not ids:
            return total
        total += _delete(delete(model).where(key.in_(ids)))
        if len(ids) < PRUNE_BATCH:
            return total


def _delete(statement: Any) -> int:
    count = db.session.execute(statement.execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return count
