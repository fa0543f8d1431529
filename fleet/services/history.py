"""A device's past: the event log, the 24-hour status timeline and telemetry history.

Telemetry is sampled at most once per TELEMETRY_SAMPLE_SECONDS per device and
pruned by the sweep after TELEMETRY_RETENTION_SECONDS, so a day's history is a
few hundred rows per device at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select

from fleet.extensions import db
from fleet.models import Device, DeviceEvent, TelemetrySample
from fleet.services.events import EventKind

TIMELINE_HOURS = 24
# The device page's zoom: how far back its timeline and charts reach, as the URL names it.
# At 1 h a device that changed 32 times in 10 minutes fills a sixth of the bar.
TIMELINE_SPANS = {"1h": 1, "6h": 6, "24h": 24}
DEFAULT_SPAN = "24h"
# A status change as (time, from status, to status).
Change = tuple[datetime, str | None, str | None]
MAX_EVENTS_PER_PAGE = 200


@dataclass(frozen=True)
class EventFilter:
    """An event-log view as it appears in a URL."""

    uid: str | None = None
    site: str | None = None
    source: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class EventRow:
    event: DeviceEvent
    uid: str
    site: str | None


@dataclass(frozen=True)
class EventPage:
    items: list[EventRow]
    page: int
    per_page: int
    has_next: bool


def list_events(view: EventFilter) -> EventPage:
    """One page of events, newest first; fetching one extra row says whether more exist."""
    per_page = max(1, min(view.per_page, MAX_EVENTS_PER_PAGE))
    page = max(1, view.page)
    query = _event_query(view).limit(per_page + 1).offset((page - 1) * per_page)
    rows = db.session.execute(query).all()
    items = [EventRow(row[0], row.uid, row.site) for row in rows[:per_page]]
    return EventPage(items, page, per_page, has_next=len(rows) > per_page)


def _event_query(view: EventFilter) -> Select:
    query = select(DeviceEvent, Device.uid, Device.site).join(
        Device, Device.id == DeviceEvent.device_id
    )
    conditions: dict[Any, Any] = {
        Device.uid: view.uid,
        Device.site: view.site,
        DeviceEvent.source: view.source,
        DeviceEvent.kind: view.kind,
    }
    for column, value in conditions.items():
        if value:
            query = query.where(column == value)
    if view.since:
        query = query.where(DeviceEvent.created_at >= view.since)
    if view.until:
        query = query.where(DeviceEvent.created_at < view.until)
    return query.order_by(DeviceEvent.created_at.desc(), DeviceEvent.id.desc())


@dataclass(frozen=True)
class Segment:
    """A stretch of the timeline in one status; `left` and `width` are fractions of it."""

    status: str | None
    start: datetime
    end: datetime
    left: float
    width: float


def timeline_segments(
    changes: list[Change],
    current_status: str,
    start: datetime,
    end: datetime,
    created_at: datetime | None = None,
) -> list[Segment]:
    """The statuses from `start` to `end`, from (time, from, to) status changes, oldest first.

    Before the first change in the window the device was in that change's
    `from` status (or, with none, in its current status); before it existed,
    in no status at all.
    """
    span = (end - start).total_seconds()
    status = changes[0][1] if changes else current_status
    cursor = start
    stretches: list[tuple[str | None, datetime, datetime]] = []
    if created_at is not None and created_at > start:
        stretches.append((None, start, created_at))
        cursor = created_at
    for at, _, to_status in changes:
        at = min(max(at, cursor), end)
        stretches.append((status, cursor, at))
        status, cursor = to_status, at
    stretches.append((status, cursor, end))
    return [
        Segment(
            status,
            begin,
            finish,
            left=(begin - start).total_seconds() / span,
            width=(finish - begin).total_seconds() / span,
        )
        for status, begin, finish in stretches
        if finish > begin
    ]


def status_changes(device_id: int, since: datetime) -> list[Change]:
    """(time, from, to) of the device's status events since `since`, oldest first."""
    rows = db.session.execute(
        select(DeviceEvent.created_at, DeviceEvent.from_status, DeviceEvent.to_status)
        .where(
            DeviceEvent.device_id == device_id,
            DeviceEvent.kind == EventKind.STATUS,
            DeviceEvent.created_at >= since,
        )
        .order_by(DeviceEvent.created_at, DeviceEvent.id)
    ).all()
    return [(row.created_at, row.from_status, row.to_status) for row in rows]


@dataclass(frozen=True)
class Mark:
    """One telemetry sample as a band of a chart; it tells its time and value."""

    at: datetime
    value: float
    left: float  # fractions of the window, like a Segment's
    width: float


@dataclass(frozen=True)
class Series:
    """Telemetry samples as SVG polyline points in a 100 x 100 box (y grows downwards)."""

    battery: str
    wifi: str
    samples: int
    latest_battery: float | None
    latest_wifi: int | None
    battery_marks: tuple[Mark, ...] = ()
    wifi_marks: tuple[Mark, ...] = ()


def telemetry_series(device_id: int, start: datetime, end: datetime) -> Series:
    """Battery (0-100 %) and wifi (-120..0 dBm) since `start`, as polyline points and marks."""
    rows = db.session.execute(
        select(
            TelemetrySample.recorded_at,
            TelemetrySample.battery_level,
            TelemetrySample.wifi_strength,
        )
        .where(TelemetrySample.device_id == device_id, TelemetrySample.recorded_at >= start)
        .order_by(TelemetrySample.recorded_at)
    ).all()
    span = (end - start).total_seconds()

    def known(values: list[tuple[datetime, float | None]]) -> list[tuple[datetime, float]]:
        return [(at, value) for at, value in values if value is not None]

    def points(values: list[tuple[datetime, float]], low: float, high: float) -> str:
        # The last reading holds until now: a line, even from a single sample.
        held = [*values, (end, values[-1][1])] if values else []
        return " ".join(
            f"{(at - start).total_seconds() / span * 100:.2f},"
            f"{100 - (min(max(value, low), high) - low) / (high - low) * 100:.2f}"
            for at, value in held
        )

    def marks(values: list[tuple[datetime, float]]) -> tuple[Mark, ...]:
        # Each sample's band reaches to the next one (the last to now), as its line does.
        ends = [at for at, _ in values[1:]] + [end]
        if not values:
            return ()
        return tuple(
            Mark(
                at,
                value,
                left=(at - start).total_seconds() / span,
                width=max(0.0, (until - at).total_seconds() / span),
            )
            for (at, value), until in zip(values, ends, strict=True)
        )

    battery = known([(row.recorded_at, row.battery_level) for row in rows])
    wifi = known([(row.recorded_at, row.wifi_strength) for row in rows])
    return Series(
        battery=points(battery, 0, 100),
        wifi=points(wifi, -120, 0),
        samples=len(rows),
        latest_battery=battery[-1][1] if battery else None,
        latest_wifi=int(wifi[-1][1]) if wifi else None,
        battery_marks=marks(battery),
        wifi_marks=marks(wifi),
    )


def window_start(now: datetime, span: str = DEFAULT_SPAN) -> datetime:
    """The start of the device page's window: 1, 6 or 24 hours back."""
    return now - timedelta(hours=TIMELINE_SPANS.get(span, TIMELINE_HOURS))
