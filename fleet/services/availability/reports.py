"""Availability per device, site and fleet, the outages, and their CSV, from the rollups.

Nothing here reads the raw events: a 30-day report for 10,000 devices sums at
most 300,000 day rows in one grouped query and adds each device's open segment.
The CSVs stream: rows are written as the server-side cursor yields them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import or_, select

from fleet.availability_models import Outage
from fleet.extensions import db
from fleet.models import Device
from fleet.services.availability.fold import Seconds
from fleet.services.availability.windows import (
    Window,
    date_window,
    device_rows,
    seconds_of,
    stream,
    window_of,
)
from fleet.services.device_state import get_device

Grouping = Literal["device", "site", "fleet"]

# The CSV columns, in order: a stable interface (docs/availability.md).
DEVICE_COLUMNS = (
    "uid",
    "name",
    "site",
    "from",
    "to",
    "availability",
    "connected_seconds",
    "temporarily_offline_seconds",
    "disconnected_seconds",
    "off_hours_seconds",
    "expected_on_seconds",
    "outages",
)
SITE_COLUMNS = ("site", "devices", *DEVICE_COLUMNS[3:])
FLEET_COLUMNS = ("fleet", "devices", *DEVICE_COLUMNS[3:])
OUTAGE_COLUMNS = (
    "uid",
    "name",
    "site",
    "started_at",
    "ended_at",
    "duration_seconds",
    "status",
    "reason",
    "ended_by",
)


@dataclass
class ReportRow:
    """Availability of one device, one site or the fleet over a window."""

    key: str
    seconds: Seconds = field(default_factory=Seconds)
    outages: int = 0
    devices: int = 0
    name: str | None = None
    site: str | None = None

    def add(self, seconds: Seconds, outages: int) -> None:
        self.seconds.merge(seconds)
        self.outages += outages
        self.devices += 1


@dataclass(frozen=True)
class Report:
    window: Window
    by: Grouping
    rows: list[ReportRow]


def device_availability(uid: str, window_name: str, now: datetime) -> tuple[Window, Seconds]:
    """One device's seconds per tier over a named window (24h, 7d, 30d, 90d)."""
    device = get_device(uid)
    window = window_of(window_name, now)
    row = db.session.execute(device_rows(window, Device.id == device.id, False)).one_or_none()
    return window, Seconds() if row is None else seconds_of(row, window)


def report_window(first: date, last: date, now: datetime) -> Window:
    """The window of a report from `first` to `last` (UTC days, inclusive)."""
    return date_window(first, last, now)


def _scope(site: str | None) -> Any:
    return None if site is None else Device.site == site


def device_report(window: Window, site: str | None = None) -> Iterator[ReportRow]:
    """Availability per device in the window, by uid, streamed."""
    query = device_rows(window, _scope(site)).order_by(Device.uid)
    for row in stream(query, db.session):
        report = ReportRow(row.uid, name=row.name, site=row.site)
        report.add(seconds_of(row, window), row.outages)
        yield report


def grouped_report(window: Window, by: Grouping, site: str | None = None) -> list[ReportRow]:
    """Availability per site (by name, the devices without a site last) or for the whole fleet."""
    groups: dict[str, ReportRow] = {}
    for device in device_report(window, site):
        key = "fleet" if by == "fleet" else device.site or ""
        groups.setdefault(key, ReportRow(key, site=device.site if by == "site" else None)).add(
            device.seconds, device.outages
        )
    if by == "fleet" and not groups:
        groups["fleet"] = ReportRow("fleet")
    return sorted(groups.values(), key=lambda row: (row.key == "", row.key))


def availability_report(
    first: date, last: date, by: Grouping, now: datetime, site: str | None = None
) -> Report:
    """The availability report as rows (by device the whole list: use the CSV for large fleets)."""
    window = report_window(first, last, now)
    rows = list(device_report(window, site)) if by == "device" else grouped_report(window, by, site)
    return Report(window, by, rows)


def availability_csv(
    first: date, last: date, by: Grouping, now: datetime, site: str | None = None
) -> Iterator[str]:
    """The report as CSV lines, the first naming the columns; by device it streams."""
    window = report_window(first, last, now)
    rows: Iterable[ReportRow] = (
        device_report(window, site) if by == "device" else grouped_report(window, by, site)
    )
    columns = {"device": DEVICE_COLUMNS, "site": SITE_COLUMNS, "fleet": FLEET_COLUMNS}[by]
    yield _line(columns)
    for row in rows:
        yield _line(_csv_values(row, by, window))


def _csv_values(row: ReportRow, by: Grouping, window: Window) -> list[Any]:
    seconds = row.seconds
    availability = seconds.availability
    head: list[Any] = (
        [row.key, row.name or "", row.site or ""]
        if by == "device"
        else [
            row.key,
            row.devices,
        ]
    )
    return [
        *head,
        window.start.isoformat(),
        window.end.isoformat(),
        "" if availability is None else f"{availability:.6f}",
        *(round(seconds_value) for seconds_value in _tier_values(seconds)),
        row.outages,
    ]


def _tier_values(seconds: Seconds) -> list[float]:
    return [
        seconds.connected,
        seconds.temporarily_offline,
        seconds.disconnected,
        seconds.off_hours,
        seconds.expected_on,
    ]


@dataclass(frozen=True)
class OutageRow:
    uid: str
    name: str | None
    site: str | None
    started_at: datetime
    ended_at: datetime | None
    status: str
    reason: str
    ended_by: str | None

    def duration(self, now: datetime) -> float:
        """Seconds so far for an outage still open."""
        return ((self.ended_at or now) - self.started_at).total_seconds()


def outages(
    first: date, last: date, now: datetime, site: str | None = None, limit: int | None = None
) -> Iterator[OutageRow]:
    """The outages that overlap the days, oldest first, streamed."""
    window = report_window(first, last, now)
    query = (
        select(
            Device.uid,
            Device.name,
            Device.site,
            Outage.started_at,
            Outage.ended_at,
            Outage.status,
            Outage.reason,
            Outage.ended_by,
        )
        .join(Device, Device.id == Outage.device_id)
        .where(
            Outage.started_at < window.end,
            or_(Outage.ended_at.is_(None), Outage.ended_at > window.start),
        )
        .order_by(Outage.started_at, Outage.id)
    )
    if site is not None:
        query = query.where(Device.site == site)
    if limit is not None:
        query = query.limit(limit)
    for row in stream(query, db.session):
        yield OutageRow(*row)


def outages_csv(first: date, last: date, now: datetime, site: str | None = None) -> Iterator[str]:
    """The outages as CSV lines, the first naming the columns."""
    yield _line(OUTAGE_COLUMNS)
    for outage in outages(first, last, now, site):
        yield _line(
            [
                outage.uid,
                outage.name or "",
                outage.site or "",
                outage.started_at.isoformat(),
                outage.ended_at.isoformat() if outage.ended_at else "",
                round(outage.duration(now)),
                outage.status,
                outage.reason,
                outage.ended_by or "",
            ]
        )


def _line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(_inert(value) for value in values)
    return buffer.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    # Names and reasons come from devices: a spreadsheet must not run one as a formula.
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@dataclass(frozen=True)
class ReportScreen:
    report: Report
    fleet: ReportRow
    outages: list[OutageRow]
    outages_shown: int


def report_screen(
    first: date, last: date, by: Grouping, now: datetime, site: str | None = None
) -> ReportScreen:
    """The reports page: the chosen grouping, the fleet's line, and the first outages."""
    report = availability_report(first, last, by, now, site)
    fleet = grouped_report(report.window, "fleet", site)[0]
    shown = list(outages(first, last, now, site, limit=OUTAGES_SHOWN))
    return ReportScreen(report, fleet, shown, OUTAGES_SHOWN)


# The page lists this many; the CSV has them all.
OUTAGES_SHOWN = 200
