"""Status bars: a device's last 24 hours by hour and last 30 days by day, from the rollups.

Each cell holds the seconds per tier and off hours of its hour or day, the open
segment (from the tally to now) included, so the bars and the figures beside
them come from the same numbers. The grid's bars for a page of rows are one query.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select

from fleet.availability_models import AvailabilityDay, AvailabilityHour, AvailabilityTally
from fleet.extensions import db
from fleet.models import Device
from fleet.services.availability.fold import BUCKETS, DAY, HOUR, Period, Seconds, split
from fleet.services.availability.windows import Window, open_segment, window_of

# Drawn bottom-up in a cell: the worst tier on top, where the eye lands first.
STACK = ("connected", "off_hours", "temporarily_offline", "disconnected")


@dataclass(frozen=True)
class Cell:
    start: datetime
    end: datetime
    seconds: Seconds

    @property
    def total(self) -> float:
        return sum(self.seconds.as_dict().values())

    @property
    def main(self) -> str:
        """The bucket this cell spent most of its time in ("none": before enrolment)."""
        values = self.seconds.as_dict()
        return max(STACK, key=lambda name: values[name]) if self.total > 0 else "none"

    def parts(self) -> list[tuple[str, float]]:
        """(bucket, fraction of the cell) bottom-up, for the stacked drawing."""
        total = self.total
        if total <= 0:
            return []
        values = self.seconds.as_dict()
        return [(name, values[name] / total) for name in STACK if values[name] > 0]


@dataclass(frozen=True)
class Bar:
    window: Window
    cells: list[Cell]

    @property
    def seconds(self) -> Seconds:
        total = Seconds()
        for cell in self.cells:
            total.merge(cell.seconds)
        return total


@dataclass(frozen=True)
class DeviceBars:
    day: Bar
    month: Bar


def device_bars(device_id: int, now: datetime) -> DeviceBars:
    """The device page's two bars: 24 hourly cells and 30 daily cells."""
    return DeviceBars(
        day=_bars([device_id], window_of("24h", now))[device_id],
        month=_bars([device_id], window_of("30d", now))[device_id],
    )


def grid_bars(device_ids: list[int], now: datetime) -> dict[int, Bar]:
    """24-hour bars for a page of the grid, in one query."""
    return _bars(device_ids, window_of("24h", now)) if device_ids else {}


def _bars(device_ids: list[int], window: Window) -> dict[int, Bar]:
    model = AvailabilityHour if window.period == "hour" else AvailabilityDay
    key = model.hour if window.period == "hour" else model.day
    lower = window.start if window.period == "hour" else window.first_day
    # One row per (device, bucket) with the device's open segment repeated on each:
    # a device with no rollups in the window still comes back once, for its open segment.
    rows = db.session.execute(
        select(
            Device.id,
            Device.status,
            Device.expected_off,
            Device.created_at,
            AvailabilityTally.tallied_to,
            AvailabilityTally.status.label("tally_status"),
            AvailabilityTally.expected_off.label("tally_expected_off"),
            key.label("bucket"),
            *(getattr(model, f"{name}_seconds").label(name) for name in BUCKETS),
        )
        .outerjoin(AvailabilityTally, AvailabilityTally.device_id == Device.id)
        .outerjoin(model, and_(model.device_id == Device.id, key >= lower))
        .where(Device.id.in_(device_ids))
    ).all()
    buckets: dict[int, dict[Any, Seconds]] = defaultdict(dict)
    heads: dict[int, Any] = {}
    for row in rows:
        heads[row.id] = row
        if row.bucket is not None:
            buckets[row.id][_key(row.bucket, window.period)] = Seconds(
                *(getattr(row, name) for name in BUCKETS)
            )
    return {device_id: _bar(window, buckets[device_id], head) for device_id, head in heads.items()}


def _key(bucket: Any, period: Period) -> Any:
    return bucket if period == "hour" else bucket.isoformat()


def _bar(window: Window, stored: dict[Any, Seconds], head: Any) -> Bar:
    step = HOUR if window.period == "hour" else DAY
    state, since = open_segment(head)
    open_seconds = dict(split(max(since, window.start), window.end, window.period))
    cells, start = [], window.start
    while start < window.end:
        seconds = Seconds()
        found = stored.get(_key(start if window.period == "hour" else start.date(), window.period))
        if found is not None:
            seconds.merge(found)
        if start in open_seconds:
            seconds.add(state.bucket, open_seconds[start])
        cells.append(Cell(start, min(start + step, window.end), seconds))
        start += step
    return Bar(window, cells)
