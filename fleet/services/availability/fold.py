"""Availability as a pure fold of a device's events: no Flask, no database.

A device is in one state at a time: its status tier and whether it is expected
off. Time while expected off (off hours or maintenance) is "off_hours" and not
expected on; any other time counts to the tier. The rollups, the rebuild and the
naive recomputation the tests and the benchmark compare against all fold the
events through `segments` and `split`, so they cannot disagree on the rules.
Days and hours are UTC: a UTC day is always 86,400 s, so DST never bends a bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

TIERS = ("connected", "temporarily_offline", "disconnected")
BUCKETS = (*TIERS, "off_hours")
# The event kinds that change the state availability folds.
STATUS_KINDS = frozenset({"status", "registered"})
EXPECTED_OFF_KIND = "expected_off"
FOLDED_KINDS = STATUS_KINDS | {EXPECTED_OFF_KIND}

Period = Literal["day", "hour"]
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# The 24 h window: the current UTC hour and this much before it (its hour rows).
HOURS_BACK = 23 * HOUR


@dataclass(frozen=True)
class State:
    status: str
    expected_off: str | None = None

    @property
    def bucket(self) -> str:
        """Where this state's seconds go: off hours while expected off, else the tier."""
        return "off_hours" if self.expected_off else self.status

    @property
    def down(self) -> bool:
        """In an outage: expected on and not connected."""
        return self.expected_off is None and self.status != "connected"


@dataclass(frozen=True)
class Change:
    """One folded event: a new status (`to_status`) or a new expected-off state."""

    at: datetime
    kind: str
    to_status: str | None = None
    expected_off: str | None = None
    reason: str = ""
    from_status: str | None = None

    def apply(self, state: State) -> State:
        if self.kind == EXPECTED_OFF_KIND:
            return State(state.status, self.expected_off)
        return State(self.to_status or state.status, state.expected_off)


@dataclass
class Seconds:
    """Seconds in each tier and off hours over some stretch of time."""

    connected: float = 0.0
    temporarily_offline: float = 0.0
    disconnected: float = 0.0
    off_hours: float = 0.0

    @property
    def expected_on(self) -> float:
        return self.connected + self.temporarily_offline + self.disconnected

    @property
    def availability(self) -> float | None:
        """Connected / expected on; None when the device was never expected on."""
        expected = self.expected_on
        return None if expected <= 0 else min(1.0, self.connected / expected)

    def add(self, bucket: str, seconds: float) -> None:
        setattr(self, bucket, getattr(self, bucket) + seconds)

    def merge(self, other: Seconds) -> None:
        for name in BUCKETS:
            self.add(name, getattr(other, name))

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in BUCKETS}


@dataclass(frozen=True)
class Segment:
    state: State
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class Fold:
    """The result of folding events: the segments, and the state and time reached."""

    segments: list[Segment] = field(default_factory=list)
    state: State | None = None
    cursor: datetime | None = None


def change_of(event: Any) -> Change:
    """A Change from an event (an Event, a DeviceEvent row or any row with the same fields)."""
    details = event.details if event.kind == EXPECTED_OFF_KIND else None
    expected_off = (details or {}).get("expected_off")
    return Change(
        event.created_at,
        event.kind,
        event.to_status,
        expected_off,
        event.reason or "",
        event.from_status,
    )


def initial_status(changes: list[Change], fallback: str) -> str:
    """A device's status at enrolment: its first status event's, else `fallback` (its current)."""
    for change in changes:
        if change.kind in STATUS_KINDS:
            return change.from_status or change.to_status or fallback
    return fallback


def segments(
    state: State, start: datetime, changes: Iterable[Change], end: datetime | None = None
) -> Fold:
    """Fold `changes` (oldest first) from `state` at `start`; with `end`, close the last segment.

    A change stamped before the cursor (a transaction that read the clock
    earlier but committed later) takes effect at the cursor: time never runs back.
    """
    fold = Fold(state=state, cursor=start)
    for change in changes:
        at = max(change.at, fold.cursor)
        if at > fold.cursor:
            fold.segments.append(Segment(fold.state, fold.cursor, at))
        fold.state, fold.cursor = change.apply(fold.state), at
    if end is not None and end > fold.cursor:
        fold.segments.append(Segment(fold.state, fold.cursor, end))
        fold.cursor = end
    return fold


def period_start(at: datetime, period: Period) -> datetime:
    if period == "day":
        return datetime.combine(at.astimezone(UTC).date(), time(), tzinfo=UTC)
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def split(start: datetime, end: datetime, period: Period) -> Iterator[tuple[datetime, float]]:
    """The seconds of [start, end) in each UTC day or hour it touches: (bucket start, seconds)."""
    step = DAY if period == "day" else HOUR
    bucket = period_start(start, period)
    cursor = start
    while cursor < end:
        upper = min(bucket + step, end)
        yield bucket, (upper - cursor).total_seconds()
        bucket, cursor = bucket + step, upper


def bucketed(
    found: Iterable[Segment], period: Period, since: datetime | None = None
) -> dict[datetime, Seconds]:
    """Seconds per UTC day or hour over the segments, leaving out anything before `since`."""
    totals: dict[datetime, Seconds] = {}
    for segment in found:
        start = segment.start if since is None else max(segment.start, since)
        for bucket, seconds in split(start, segment.end, period):
            totals.setdefault(bucket, Seconds()).add(segment.state.bucket, seconds)
    return totals


def clipped(found: Iterable[Segment], start: datetime, end: datetime) -> Seconds:
    """The seconds per bucket of the segments within [start, end)."""
    total = Seconds()
    for segment in found:
        lower, upper = max(segment.start, start), min(segment.end, end)
        if upper > lower:
            total.add(segment.state.bucket, (upper - lower).total_seconds())
    return total


def day_of(bucket: datetime) -> date:
    return bucket.date()
