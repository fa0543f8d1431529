"""The windows availability is measured over, and the seconds of devices within one.

A window is [start, end) with `start` on a UTC hour (24 h) or day boundary:
- `24h` is the current UTC hour so far and the 23 before it, read from the hour rollups;
- `7d`, `30d`, `90d` are today (UTC) so far and the 6, 29 or 89 days before it;
- a report's date range is whole UTC days from `from` to `to` inclusive, cut at now.
Aligned windows are what make the rollups exact: every bucket is wholly in or out.
The figures are the rollups up to each device's `tallied_to` plus the open
segment from there on, in the state the tally recorded (the device's state now).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)

from fleet.availability_models import (
    AvailabilityDay,
    AvailabilityHour,
    AvailabilitySiteHour,
    AvailabilityTally,
    Outage,
)
from fleet.errors import InvalidInput
from fleet.extensions import db
from fleet.models import Device
from fleet.services.availability.fold import (
    DAY,
    HOURS_BACK,
    Period,
    Seconds,
    State,
    period_start,
)
from fleet.services.queries import among
from fleet.timeutil import UTCDateTime

WINDOWS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
MAX_REPORT_DAYS = 400


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime
    end: datetime
    period: Period

    @property
    def first_day(self) -> date:
        return self.start.date()


def window_of(name: str, now: datetime) -> Window:
    """The named window (24h, 7d, 30d, 90d) ending now."""
    if name not in WINDOWS:
        raise InvalidInput(
            "invalid field(s): window", {"fields": {"window": f"one of {', '.join(WINDOWS)}"}}
        )
    if name == "24h":
        return Window(name, period_start(now, "hour") - HOURS_BACK, now, "hour")
    return Window(name, period_start(now, "day") - (WINDOWS[name] - 1) * DAY, now, "day")


def date_window(first: date, last: date, now: datetime) -> Window:
    """Whole UTC days from `first` to `last` inclusive, cut at `now`."""
    if last < first:
        raise InvalidInput("invalid field(s): to", {"fields": {"to": "must not be before from"}})
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise InvalidInput(
            "invalid field(s): to", {"fields": {"to": f"at most {MAX_REPORT_DAYS} days after from"}}
        )
    start = datetime.combine(first, time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    return Window(f"{first}..{last}", start, min(end, max(now, start)), "day")


def rollup_sums(window: Window, scope: Any = None, device_ids: list[int] | None = None) -> Select:
    """Seconds per device in the window's rollup buckets, for the devices in `scope`.

    The scope is applied inside the grouping, so a page of 50 sites sums their
    devices' rows only, not the whole fleet's. Given `device_ids` (the scope's
    devices, known already), the rollups are read by their key: a join on the
    scope lets PostgreSQL guess a few thousand rows and scan every hour row
    instead (69 ms against 7 ms for a page of sites, docs/benchmarks.md).
    """
    model = AvailabilityHour if window.period == "hour" else AvailabilityDay
    key = model.hour if window.period == "hour" else model.day
    lower, upper = _bounds(window)
    query = (
        select(
            model.device_id.label("device_id"),
            func.sum(model.connected_seconds).label("connected"),
            func.sum(model.temporarily_offline_seconds).label("temporarily_offline"),
            func.sum(model.disconnected_seconds).label("disconnected"),
            func.sum(model.off_hours_seconds).label("off_hours"),
        )
        .where(key >= lower, key < upper)
        .group_by(model.device_id)
    )
    if device_ids is not None:
        return query.where(among(model.device_id, device_ids))
    if scope is not None:
        query = query.join(Device, Device.id == model.device_id).where(scope)
    return query


def _bounds(window: Window) -> tuple[Any, Any]:
    """The window's rollup keys: hours from its start, or days from its first day."""
    if window.period == "hour":
        return window.start, window.end
    return window.first_day, _first_day_from(window.end)


def _first_day_from(at: datetime) -> date:
    """The first UTC day that starts at or after `at`: the days before it start before `at`."""
    day = at.astimezone(UTC).date()
    return day if at.astimezone(UTC).time() == time() else day + DAY


def outage_counts(window: Window) -> Select:
    """Outages per device that overlap the window."""
    return (
        select(Outage.device_id.label("device_id"), func.count().label("outages"))
        .where(
            Outage.started_at < window.end,
            or_(Outage.ended_at.is_(None), Outage.ended_at > window.start),
        )
        .group_by(Outage.device_id)
    )


def device_rows(
    window: Window,
    scope: Any = None,
    with_outages: bool = True,
    device_ids: list[int] | None = None,
) -> Select:
    """One row per device in `scope` (or of `device_ids`): its rollup sums, tally and outage
    count in the window."""
    sums = rollup_sums(window, scope, device_ids).subquery()
    columns = [
        Device.id,
        Device.uid,
        Device.name,
        Device.site,
        Device.status,
        Device.expected_off,
        Device.created_at,
        AvailabilityTally.tallied_to,
        AvailabilityTally.status.label("tally_status"),
        AvailabilityTally.expected_off.label("tally_expected_off"),
        *(
            sums.c[name]
            for name in ("connected", "temporarily_offline", "disconnected", "off_hours")
        ),
    ]
    query = (
        select(*columns)
        .outerjoin(AvailabilityTally, AvailabilityTally.device_id == Device.id)
        .outerjoin(sums, sums.c.device_id == Device.id)
        .where(Device.created_at < window.end)
    )
    if with_outages:
        counts = outage_counts(window).subquery()
        query = query.add_columns(func.coalesce(counts.c.outages, 0).label("outages")).outerjoin(
            counts, counts.c.device_id == Device.id
        )
    else:
        query = query.add_columns(literal(0).label("outages"))
    if device_ids is not None:
        query = query.where(among(Device.id, device_ids))
    if scope is not None:
        query = query.where(scope)
    return query


def seconds_of(row: Any, window: Window) -> Seconds:
    """A device row's seconds in the window: its rollups plus its open segment."""
    total = Seconds(
        connected=row.connected or 0.0,
        temporarily_offline=row.temporarily_offline or 0.0,
        disconnected=row.disconnected or 0.0,
        off_hours=row.off_hours or 0.0,
    )
    state, since = open_segment(row)
    lower, upper = max(since, window.start), window.end
    if upper > lower:
        total.add(state.bucket, (upper - lower).total_seconds())
    return total


@dataclass
class Group:
    """A group of devices (a site, say): its seconds in a window and its devices per tier now."""

    seconds: Seconds = field(default_factory=Seconds)
    devices: int = 0
    tiers: dict[str, int] = field(default_factory=dict)
    expected_off: int = 0


GROUP_TIERS = ("connected", "temporarily_offline", "disconnected")


def group_of(row: Any) -> Group:
    """A `grouped_rows` row as a Group."""
    seconds = Seconds(*(row._mapping[name] for name in BUCKET_NAMES))
    tiers = {tier: row._mapping[f"n_{tier}"] for tier in GROUP_TIERS}
    return Group(seconds, row.devices, tiers, row.off)


def grouped_rows(window: Window, by: Any, rollups: Select, scope: Any = None) -> Select:
    """One row per `by` with devices now: its seconds in each bucket, its devices, per tier
    and expected off (columns `key`, BUCKET_NAMES, `devices`, `n_<tier>`, `off`).

    Two grouped subqueries joined in the database: each device's open segment
    (from its tally to the window's end, in its tally's state), and the window's
    rollup rows already keyed by `by` (`site_hours`); 2,000 sites are 2,000 rows
    each side, never 10,000 devices. Each is summed on its own, so each gets a plan
    of its own (a union of the rows before summing took twice as long,
    docs/benchmarks.md).
    """
    summed = _summed(rollups).subquery("rollups")
    opened = _summed(_open_branch(window, by, scope)).subquery("opened")
    return select(
        opened.c.key,
        *(
            (opened.c[name] + func.coalesce(summed.c[name], 0.0)).label(name)
            for name in BUCKET_NAMES
        ),
        *(opened.c[name] for name in ("devices", *(f"n_{t}" for t in GROUP_TIERS), "off")),
    ).outerjoin(summed, summed.c.key == opened.c.key)


def _summed(branch: Select) -> Select:
    rows = branch.subquery()
    return select(
        rows.c.key,
        *(func.coalesce(func.sum(c), 0).label(c.name) for c in rows.c if c.name != "key"),
    ).group_by(rows.c.key)


BUCKET_NAMES = ("connected", "temporarily_offline", "disconnected", "off_hours")


def site_hours(window: Window, sites: Any = None) -> Select:
    """The rollups of `grouped_rows` by site for an hourly window, from the site hour rows.

    `sites` filters on AvailabilitySiteHour.site (the empty name is no site).
    """
    if window.period != "hour":
        raise ValueError("site rollups are hourly: a 24 h window only")
    model = AvailabilitySiteHour
    lower, upper = _bounds(window)
    query = _rollup_columns(model.site, model).where(model.hour >= lower, model.hour < upper)
    return query if sites is None else query.where(sites)


def _rollup_columns(by: Any, model: type) -> Select:
    return select(
        by.label("key"),
        *(cast(getattr(model, f"{name}_seconds"), Float).label(name) for name in BUCKET_NAMES),
    )


def _open_branch(window: Window, by: Any, scope: Any) -> Select:
    tallied = AvailabilityTally.device_id.is_not(None)
    since = func.coalesce(AvailabilityTally.tallied_to, Device.created_at)
    status = case((tallied, AvailabilityTally.status), else_=Device.status)
    off = case((tallied, AvailabilityTally.expected_off), else_=Device.expected_off)
    bucket = case((off.is_not(None), literal("off_hours")), else_=status)
    seconds = cast(_seconds_between(since, window), Float)
    zero = cast(literal(0), Float)

    def counted(condition: Any) -> Any:
        return case((condition, literal(1)), else_=literal(0))

    query = select(
        by.label("key"),
        *(case((bucket == name, seconds), else_=zero).label(name) for name in BUCKET_NAMES),
        literal(1).label("devices"),
        *(counted(Device.status == tier).label(f"n_{tier}") for tier in GROUP_TIERS),
        counted(Device.expected_off.is_not(None)).label("off"),
    ).outerjoin(AvailabilityTally, AvailabilityTally.device_id == Device.id)
    return query if scope is None else query.where(scope)


def _seconds_between(since: Any, window: Window) -> Any:
    """Seconds from max(since, window start) to the window's end, in the database's arithmetic."""
    start = bindparam("window_start", window.start, type_=UTCDateTime)
    end = bindparam("window_end", window.end, type_=UTCDateTime)
    # Never negative: a device enrolled (or tallied) after the window's end has no open time.
    if db.session.get_bind().dialect.name == "postgresql":
        return func.greatest(0, func.extract("epoch", end - func.greatest(since, start)))
    # SQLite keeps times as ISO text, which orders like time and julianday() reads.
    return func.max(0, (func.julianday(end) - func.julianday(func.max(since, start))) * 86400.0)


def open_segment(row: Any) -> tuple[State, datetime]:
    """Where a device's rollups stop, and the state it has been in since.

    Without a tally the device has had no status event since it was added, so it
    has been in its current status since `created_at`.
    """
    if row.tallied_to is None:
        return State(row.status, row.expected_off), row.created_at
    return State(row.tally_status, row.tally_expected_off), row.tallied_to


def stream(query: Select, session: Any, batch: int = 1000) -> Iterator[Any]:
    """Rows of a large query without holding them all (a server-side cursor on PostgreSQL)."""
    result = session.execute(query.execution_options(yield_per=batch))
    yield from result


def and_all(*conditions: Any) -> Any:
    present = [c for c in conditions if c is not None]
    return and_(*present) if present else None
