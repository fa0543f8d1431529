"""The rollups kept in step with the events, in the transaction that records them.

`tally_events` is called by `fleet.services.events.record_events` with every
batch of events. For the devices whose status or expected-off state changed it:
1. locks their tally rows (creating the missing ones at the device's enrolment),
   so two transactions of one device fold their events one after the other;
2. folds the new events from each tally's state and `tallied_to`;
3. adds the seconds to the day and hour rollups with one upsert each (and the
   hours to the site hour rollups, under each device's current site), moves the
   tallies on, and opens or closes outages.
A sweep of 10,000 changes is therefore a handful of statements, not 10,000.

Locks are taken in one order everywhere: the device row (its compare-and-set),
its tally, then site hour rows sorted by site and hour, so transactions that
share a site wait for each other but never deadlock on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from fleet.availability_models import (
    AvailabilityDay,
    AvailabilityHour,
    AvailabilitySiteHour,
    AvailabilityTally,
    Outage,
)
from fleet.extensions import db
from fleet.models import Device
from fleet.services.availability.fold import (
    BUCKETS,
    FOLDED_KINDS,
    HOURS_BACK,
    Change,
    Seconds,
    State,
    bucketed,
    change_of,
    initial_status,
    period_start,
    segments,
)
from fleet.services.queries import among

# The hour rollups serve the 24 h figures and bars only, and are pruned after this.
HOURLY_KEEP = timedelta(hours=48)
UNKNOWN_START = "not connected since it was added"
# A device without a site is filed (and listed on the Sites page) under the empty name.
NO_SITE = ""
SITE_KEY = func.coalesce(Device.site, NO_SITE)


@dataclass
class Tally:
    device_id: int
    tallied_to: datetime
    state: State
    outage_since: datetime | None


@dataclass
class Writes:
    """What one batch adds: seconds per (device, bucket), tallies moved, outages."""

    days: dict[tuple[int, datetime], Seconds]
    hours: dict[tuple[int, datetime], Seconds]
    tallies: list[Tally]
    opened: list[dict[str, Any]]
    closed: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> Writes:
        return cls(defaultdict(Seconds), defaultdict(Seconds), [], [], [])


def tally_events(events: Iterable[Any]) -> None:
    """Fold the batch's status and expected-off events into the rollups, in this transaction."""
    changes: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        if event.kind in FOLDED_KINDS:
            changes[event.device_id].append(event)
    if not changes:
        return
    tallies = lock_tallies(changes)
    writes = Writes.empty()
    for device_id, device_events in changes.items():
        ordered = sorted((change_of(e) for e in device_events), key=lambda c: c.at)
        advance(tallies[device_id], ordered, writes)
    save(writes)


def lock_tallies(changes: dict[int, list[Any]]) -> dict[int, Tally]:
    """The tallies of these devices, locked; a device's first one starts at its enrolment."""
    ids = sorted(changes)
    found = locked_tallies(ids)
    missing = [device_id for device_id in ids if device_id not in found]
    if missing:
        _create(missing, changes)
        found.update(locked_tallies(missing))
    return found


def locked_tallies(ids: list[int]) -> dict[int, Tally]:
    # In id order, so two batches that share devices lock them in the same order.
    # Core rows: ORM objects for a mass disconnect's 10,000 tallies cost 0.34 s.
    tally = AvailabilityTally
    query = (
        select(tally.device_id, tally.tallied_to, tally.status, tally.expected_off,
               tally.outage_since)
        .where(among(tally.device_id, ids))
        .order_by(tally.device_id)
        .with_for_update()
    )  # fmt: skip
    return {
        device_id: Tally(device_id, tallied_to, State(status, expected_off), outage_since)
        for device_id, tallied_to, status, expected_off, outage_since in db.session.execute(
            query
        ).all()
    }


def _create(ids: list[int], changes: dict[int, list[Any]]) -> None:
    """Tallies for devices folded for the first time: at enrolment, in the first event's status.

    A device with no status event yet has been in its current status since it
    was added (every status change writes one), so that is the fallback.
    """
    devices = db.session.execute(
        select(Device.id, Device.created_at, Device.status).where(among(Device.id, ids))
    ).all()
    rows, outages = [], []
    for device in devices:
        ordered = sorted((change_of(e) for e in changes[device.id]), key=lambda c: c.at)
        state = State(initial_status(ordered, device.status))
        since = device.created_at if state.down else None
        rows.append(tally_row(Tally(device.id, device.created_at, state, since)))
        if since is not None:
            outages.append(outage_row(device.id, since, state.status, UNKNOWN_START))
    insert_ignoring(AvailabilityTally, rows, conflict=["device_id"])
    insert_ignoring(Outage, outages, conflict=["device_id", "started_at"])


def advance(
    tally: Tally, changes: list[Change], writes: Writes, end: datetime | None = None
) -> None:
    """Fold `changes` from the tally (and on to `end`, if given): seconds into `writes`,
    outages opened and closed."""
    fold = segments(tally.state, tally.tallied_to, changes, end)
    # Hour rows only where a 24 h window read later can reach: from the hour the
    # fold ends in and the 23 before it (a device stable for days would otherwise
    # write every hour since its last change).
    hour_floor = period_start(fold.cursor, "hour") - HOURS_BACK
    for bucket, seconds in bucketed(fold.segments, "day").items():
        writes.days[(tally.device_id, bucket)].merge(seconds)
    for bucket, seconds in bucketed(fold.segments, "hour", since=hour_floor).items():
        writes.hours[(tally.device_id, bucket)].merge(seconds)
    _outages(tally, changes, writes)
    writes.tallies.append(Tally(tally.device_id, fold.cursor, fold.state, tally.outage_since))


def checkpoint(now: datetime, batch: int = 500) -> int:
    """Move every tally idle for over CHECKPOINT_AFTER on to `now`, in committed batches.

    A tally moves only when its device's events are folded, so a device stable
    for days would fold all those days (a day row each, and its 24 hour rows)
    at its next change: a mass disconnect of a stable fleet would then write
    half a million rows inside the sweep. Run by the history job, this keeps
    each tally within about an hour, so the sweep folds an hour or two a device.
    Under the tallies' locks, taken in id order as every writer takes them.
    """
    moved, after = 0, 0
    while True:
        ids = list(
            db.session.execute(
                select(AvailabilityTally.device_id)
                .where(AvailabilityTally.device_id > after)
                .where(AvailabilityTally.tallied_to < now - CHECKPOINT_AFTER)
                .order_by(AvailabilityTally.device_id)
                .limit(batch)
            ).scalars()
        )
        if not ids:
            return moved
        writes = Writes.empty()
        for tally in locked_tallies(ids).values():
            # Read again under the lock: a transaction may have moved it meanwhile.
            if tally.tallied_to < now - CHECKPOINT_AFTER:
                advance(tally, [], writes, end=now)
        save(writes)
        db.session.commit()
        moved += len(writes.tallies)
        after = ids[-1]


# The history job runs hourly: a tally is at most about two hours behind.
CHECKPOINT_AFTER = timedelta(minutes=30)


def _outages(tally: Tally, changes: list[Change], writes: Writes) -> None:
    state, cursor, since = tally.state, tally.tallied_to, tally.outage_since
    for change in changes:
        at = max(change.at, cursor)
        after = change.apply(state)
        if since is None and after.down:
            since = at
            writes.opened.append(outage_row(tally.device_id, at, after.status, change.reason))
        elif since is not None and not after.down:
            ended_by = after.expected_off or "connected"
            writes.closed.append({"d": tally.device_id, "s": since, "e": at, "by": ended_by})
            since = None
        state, cursor = after, at
    tally.outage_since = since


def save(writes: Writes) -> None:
    """Write the batch: three rollup upserts, the tallies, the outages."""
    days = {(d, b.date()): s for (d, b), s in writes.days.items()}
    _add_seconds(AvailabilityDay, ("device_id", "day"), days)
    _add_seconds(AvailabilityHour, ("device_id", "hour"), writes.hours)
    _add_seconds(AvailabilitySiteHour, ("site", "hour"), _per_site(writes.hours))
    _move_tallies(writes.tallies)
    insert_ignoring(Outage, writes.opened, conflict=["device_id", "started_at"])
    _close_outages(writes.closed)


def _move_tallies(tallies: list[Tally]) -> None:
    """Move the (locked, existing) tallies on: one upsert, COPYed on PostgreSQL from 50 rows."""
    if not tallies:
        return
    moved = ("tallied_to", "status", "expected_off", "outage_since")
    rows = [tally_row(t) for t in tallies]
    table = AvailabilityTally.__table__
    if len(rows) >= COPY_AT_LEAST and db.session.get_bind().dialect.name == "postgresql":
        updates = ", ".join(f"{name} = excluded.{name}" for name in moved)
        values = [tuple(row.values()) for row in rows]
        _staged_upsert(table, ("device_id",), tuple(rows[0]), values, updates)
        return
    statement = _dialect().insert(table)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=["device_id"], set_={name: statement.excluded[name] for name in moved}
        ),
        rows,
    )


def _per_site(hours: dict[tuple[int, datetime], Seconds]) -> dict[tuple[str, datetime], Seconds]:
    """The devices' hour seconds summed per (current site, hour)."""
    if not hours:
        return {}
    ids = sorted({device_id for device_id, _ in hours})
    site_of = dict(
        db.session.execute(select(Device.id, SITE_KEY).where(among(Device.id, ids))).all()
    )
    sites: dict[tuple[str, datetime], Seconds] = defaultdict(Seconds)
    for (device_id, hour), seconds in hours.items():
        sites[(site_of[device_id], hour)].merge(seconds)
    return sites


def move_site(device_id: int, old: str | None, new: str | None) -> None:
    """A device changing site takes its hour rollups along: off the old site's rows, onto the new.

    Under the device's tally lock, so no transaction folding its events can add
    hours to the old site in between.
    """
    old_key, new_key = old or NO_SITE, new or NO_SITE
    if old_key == new_key:
        return
    locked_tallies([device_id])
    # In site order, as every writer of site rows takes them.
    for site, sign in sorted(((old_key, -1), (new_key, 1))):
        shift_site_hours([device_id], sign, site=site)


def resum_site_hours(since: datetime | None = None) -> None:
    """Recompute the site hour rows (from `since` on) from the device hour rows: a repair.

    On PostgreSQL the table is locked against writers first (a tally writes its
    device hours, then its site hours, in one transaction): one that committed
    is in the device rows read here, one still open adds its seconds after this
    commits. SQLite has one writer at a time anyway.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("LOCK TABLE availability_site_hour IN EXCLUSIVE MODE"))
    stale = delete(AvailabilitySiteHour)
    if since is not None:
        stale = stale.where(AvailabilitySiteHour.hour >= since)
    db.session.execute(stale.execution_options(synchronize_session=False))
    shift_site_hours(None, 1, since=since)


def shift_site_hours(
    device_ids: list[int] | None, sign: int, site: str | None = None, since: datetime | None = None
) -> None:
    """Add (sign 1) or take away (sign -1) these devices' (or all) hour rollups on the site rows.

    Filed under `site`, or each device's current site; from `since` on, or all.
    The caller holds the devices' tally locks.
    """
    hour = AvailabilityHour
    # A constant site is not grouped by: PostgreSQL refuses a literal in GROUP BY.
    key, grouping = (SITE_KEY, [SITE_KEY]) if site is None else (literal(site), [])
    query = (
        select(
            key.label("site"),
            hour.hour,
            *(func.sum(getattr(hour, column)) * sign for column in SECONDS_COLUMNS),
        )
        .join(Device, Device.id == hour.device_id)
        .group_by(*grouping, hour.hour)
        .order_by(*grouping, hour.hour)
    )
    if device_ids is not None:
        query = query.where(among(hour.device_id, device_ids))
    if since is not None:
        query = query.where(hour.hour >= since)
    table = AvailabilitySiteHour.__table__
    statement = _dialect().insert(table).from_select(["site", "hour", *SECONDS_COLUMNS], query)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=["site", "hour"], set_=_increments(table, statement)
        )
    )


def _increments(table: Any, statement: Any) -> dict[str, Any]:
    return {column: table.c[column] + statement.excluded[column] for column in SECONDS_COLUMNS}


def _close_outages(closed: list[dict[str, Any]]) -> None:
    if not closed:
        return
    outage = Outage.__table__
    db.session.execute(
        update(outage)
        .where(outage.c.device_id == bindparam("d"), outage.c.started_at == bindparam("s"))
        .values(ended_at=bindparam("e"), ended_by=bindparam("by")),
        closed,
    )


def _add_seconds(
    model: type, keys: tuple[str, str], totals: dict[tuple[Any, Any], Seconds]
) -> None:
    """Add the seconds to the rollup rows, creating those that do not exist yet.

    In key order, which is the order rows are locked in.
    """
    if not totals:
        return
    ordered = sorted(totals.items())
    if len(ordered) >= COPY_AT_LEAST and db.session.get_bind().dialect.name == "postgresql":
        _copy_seconds(model.__table__, keys, ordered)
        return
    rows = [_seconds_row(keys, key, seconds) for key, seconds in ordered]
    table = model.__table__
    statement = _dialect().insert(table)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys), set_=_increments(table, statement)
        ),
        rows,
    )


SECONDS_COLUMNS = (*(f"{name}_seconds" for name in BUCKETS), "expected_on_seconds")
# A sweep after an outage adds seconds for thousands of devices at once: COPY them
# into a temporary table and upsert from it, as the events themselves are COPYed.
COPY_AT_LEAST = 50


def _copy_seconds(
    table: Any, keys: tuple[str, str], ordered: list[tuple[tuple[Any, Any], Seconds]]
) -> None:
    added = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in SECONDS_COLUMNS)
    rows = [(*key, *seconds.as_dict().values(), seconds.expected_on) for key, seconds in ordered]
    _staged_upsert(table, keys, (*keys, *SECONDS_COLUMNS), rows, added)


def _staged_upsert(
    table: Any,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    updates: str,
) -> None:
    """COPY `rows` into a temporary table and upsert `table` from it, in key order.

    psycopg's executemany sends a statement per row; a mass disconnect's 10,000
    rows take one COPY and one INSERT ... SELECT instead.
    """
    staging = f"staging_{table.name}"
    names = ", ".join(columns)
    cursor = db.session.connection().connection.dbapi_connection.cursor()
    with cursor:
        # Per connection and emptied after use: the statement below reads only this batch.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "
            f"ORDER BY {', '.join(keys)} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )
        cursor.execute(f"DELETE FROM {staging}")


def _seconds_row(keys: tuple[str, str], key: tuple[Any, Any], seconds: Seconds) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(keys, key, strict=True))
    row.update({f"{name}_seconds": value for name, value in seconds.as_dict().items()})
    row["expected_on_seconds"] = seconds.expected_on
    return row


def tally_row(tally: Tally) -> dict[str, Any]:
    return {
        "device_id": tally.device_id,
        "tallied_to": tally.tallied_to,
        "status": tally.state.status,
        "expected_off": tally.state.expected_off,
        "outage_since": tally.outage_since,
    }


def outage_row(device_id: int, at: datetime, status: str, reason: str) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "started_at": at,
        "status": status,
        "reason": reason[:300],
        "ended_at": None,
        "ended_by": None,
    }


def insert_ignoring(model: type, rows: list[dict[str, Any]], conflict: list[str]) -> None:
    if rows:
        statement = (
            _dialect().insert(model.__table__).on_conflict_do_nothing(index_elements=conflict)
        )
        db.session.execute(statement, rows)


def _dialect() -> Any:
    return postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
