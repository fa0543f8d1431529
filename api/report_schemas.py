"""Schemas of the availability API (a device's availability, reports, outages), declared once."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from api.admin_schemas import QueryString
from api.schemas import Schema
from fleet.services.availability.fold import Seconds
from fleet.services.availability.reports import (
    DEVICE_COLUMNS,
    FLEET_COLUMNS,
    OUTAGE_COLUMNS,
    SITE_COLUMNS,
    OutageRow,
    ReportRow,
)
from fleet.services.availability.windows import MAX_REPORT_DAYS, WINDOWS, Window

WindowName = Literal[tuple(WINDOWS)]  # type: ignore[valid-type]
MAX_OUTAGES = 10_000


class AvailabilityQuery(QueryString):
    window: WindowName = Field(
        default="24h",
        description="24h: this UTC hour and the 23 before; Nd: today (UTC) and the N-1 before.",
    )


class SecondsOut(Schema):
    connected: float
    temporarily_offline: float
    disconnected: float
    off_hours: float = Field(description="Expected off: off hours or maintenance.")


class AvailabilityOut(Schema):
    uid: str
    window: WindowName
    start: datetime = Field(description="The window's start (a UTC hour or day boundary).")
    end: datetime
    availability: float | None = Field(
        description="connected / expected on, 0..1; null when never expected on.", ge=0, le=1
    )
    expected_on_seconds: float
    seconds: SecondsOut


def seconds_out(seconds: Seconds) -> SecondsOut:
    return SecondsOut(**seconds.as_dict())


def availability_out(uid: str, window: Window, seconds: Seconds) -> AvailabilityOut:
    return AvailabilityOut(
        uid=uid,
        window=window.name,
        start=window.start,
        end=window.end,
        availability=seconds.availability,
        expected_on_seconds=seconds.expected_on,
        seconds=seconds_out(seconds),
    )


class RangeQuery(QueryString):
    first: date = Field(alias="from", description="First UTC day, YYYY-MM-DD.")
    last: date = Field(alias="to", description="Last UTC day (inclusive), YYYY-MM-DD.")
    site: str | None = Field(default=None, max_length=200)
    format: Literal["json", "csv"] = "json"

    @field_validator("last")
    @classmethod
    def _not_before_first(cls, last: date, info: ValidationInfo) -> date:
        first = info.data.get("first")
        if first is not None and last < first:
            raise ValueError("must not be before from")
        if first is not None and (last - first).days + 1 > MAX_REPORT_DAYS:
            raise ValueError(f"at most {MAX_REPORT_DAYS} days after from")
        return last


class ReportQuery(RangeQuery):
    by: Literal["device", "site", "fleet"] = "device"


class ReportRowOut(Schema):
    uid: str | None = Field(default=None, description="By device.")
    name: str | None = None
    site: str | None = Field(description="By device: its site; by site: the site (null: none).")
    devices: int
    availability: float | None = Field(ge=0, le=1)
    expected_on_seconds: float
    seconds: SecondsOut
    outages: int = Field(description="Outages overlapping the range.")


class ReportOut(Schema):
    by: Literal["device", "site", "fleet"]
    start: datetime
    end: datetime
    items: list[ReportRowOut]


def report_row_out(row: ReportRow, by: str) -> ReportRowOut:
    return ReportRowOut(
        uid=row.key if by == "device" else None,
        name=row.name,
        site=row.site,
        devices=row.devices,
        availability=row.seconds.availability,
        expected_on_seconds=row.seconds.expected_on,
        seconds=seconds_out(row.seconds),
        outages=row.outages,
    )


class OutageQuery(RangeQuery):
    limit: int = Field(default=1000, ge=1, le=MAX_OUTAGES, description="JSON only; CSV has all.")


class OutageOut(Schema):
    uid: str
    name: str | None
    site: str | None
    started_at: datetime
    ended_at: datetime | None = Field(description="Null while the outage goes on.")
    duration_seconds: float
    status: str = Field(description="The tier it began in.")
    reason: str
    ended_by: Literal["connected", "off_hours", "maintenance"] | None


class OutageListOut(Schema):
    items: list[OutageOut]


def outage_out(outage: OutageRow, now: datetime) -> OutageOut:
    return OutageOut(
        uid=outage.uid,
        name=outage.name,
        site=outage.site,
        started_at=outage.started_at,
        ended_at=outage.ended_at,
        duration_seconds=outage.duration(now),
        status=outage.status,
        reason=outage.reason,
        ended_by=outage.ended_by,
    )


CSV_COLUMNS = {
    "device": DEVICE_COLUMNS,
    "site": SITE_COLUMNS,
    "fleet": FLEET_COLUMNS,
    "outages": OUTAGE_COLUMNS,
}
