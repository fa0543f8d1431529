"""Schemas of the operating hours and maintenance windows' admin API, declared once.

The schemas give the shape (and the OpenAPI document); the rules that need a
time zone database or a cron parser are checked by `fleet.schedules`, whose
errors name the field the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from api.admin_schemas import plausible_utc
from api.schemas import RequestBody, Schema, Uid, whole_number
from fleet.schedules import MAX_CLOSURES, MAX_DURATION_MINUTES, MAX_SPANS_PER_DAY, Schedule
from fleet.services.hours import MAX_UIDS, HoursView

Clock = Field(min_length=5, max_length=5, pattern=r"^\d\d:\d\d$")


class HolidaysIn(RequestBody):
    country: str = Field(min_length=2, max_length=3, description="ISO 3166 code, e.g. DE")
    subdivision: str | None = Field(default=None, max_length=10, description="e.g. BE (Berlin)")


class ClosureIn(RequestBody):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", max_length=10, description="First closed day, YYYY-MM-DD")
    to: str | None = Field(default=None, max_length=10, description="Last closed day (inclusive)")
    note: str | None = Field(default=None, max_length=200)


class ScheduleRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Europe/Berlin",
                    "weekly": {
                        "mon": [["07:00", "12:00"], ["13:00", "22:00"]],
                        "sat": [["10:00", "16:00"]],
                    },
                    "holidays": {"country": "DE", "subdivision": "BE"},
                    "closures": [{"from": "2026-12-24", "to": "2026-12-26", "note": "Christmas"}],
                }
            ]
        }
    )

    timezone: str = Field(min_length=1, max_length=64, description="An IANA time zone name")
    weekly: dict[str, list[list[str]]] | None = Field(
        default=None,
        description=f"Local spans per day (mon..sun), at most {MAX_SPANS_PER_DAY} a day; a span "
        "ending at or before its start crosses midnight. A day left out or empty is closed; "
        "no `weekly` at all means open all day, every day.",
    )
    holidays: HolidaysIn | None = Field(default=None, description="Closed on public holidays")
    closures: list[ClosureIn] = Field(default_factory=list, max_length=MAX_CLOSURES)

    def as_schedule_data(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class NextChangeOut(Schema):
    at: datetime
    opens: bool = Field(description="true: the next change is an opening; false: a closing")


class ScheduleOut(Schema):
    site: str | None = None
    uid: str | None = None
    scheduled: bool = Field(description="false: no hours set, always open")
    timezone: str
    weekly: dict[str, list[list[str]]] | None
    holidays: dict[str, Any] | None
    closures: list[dict[str, Any]]
    open_now: bool
    next_change: NextChangeOut | None
    updated_at: datetime | None = None
    updated_by: str | None = None


def schedule_out(view: HoursView, row: Any, **owner: str) -> ScheduleOut:
    schedule = view.schedule or Schedule(timezone="UTC")
    data = schedule.to_dict()
    change = view.next_change
    return ScheduleOut(
        **owner,
        scheduled=view.schedule is not None,
        timezone=data["timezone"],
        weekly=data["weekly"],
        holidays=data["holidays"],
        closures=data["closures"],
        open_now=view.open_now,
        next_change=None if change is None else NextChangeOut(at=change.at, opens=change.opens),
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else None,
    )


class WindowRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "Harbour Mall",
                    "starts_at": "2026-12-06T01:00:00Z",
                    "ends_at": "2026-12-06T05:00:00Z",
                    "note": "firmware update",
                },
                {"uids": ["kiosk-17"], "cron": "0 2 * * sun", "duration_minutes": 90},
            ]
        }
    )

    site: str | None = Field(default=None, min_length=1, max_length=200)
    uids: list[Annotated[str, Uid]] | None = Field(default=None, min_length=1, max_length=MAX_UIDS)
    filter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="A saved fleet filter: the fleet grid's URL query, e.g. `site=Mall&q=lobby`",
    )
    starts_at: AwareDatetime | None = Field(
        default=None, strict=False, description="Defaults to now for a one-off window"
    )
    ends_at: AwareDatetime | None = Field(default=None, strict=False)
    cron: str | None = Field(default=None, max_length=120, description="e.g. `0 2 * * sun`")
    rrule: str | None = Field(default=None, max_length=500, description="An RFC 5545 RRULE")
    duration_minutes: whole_number(1, MAX_DURATION_MINUTES) | None = Field(
        default=None, description="How long each recurrence lasts"
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="Where cron and rrule times are read; defaults to the site's, else UTC",
    )
    note: str | None = Field(default=None, max_length=500)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def in_utc(cls, value: datetime | None) -> datetime | None:
        return plausible_utc(value)


class WindowOut(Schema):
    id: int
    site: str | None
    uids: list[str] | None
    filter: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    cron: str | None
    rrule: str | None
    duration_minutes: int | None
    timezone: str
    note: str | None
    state: Literal["on", "scheduled", "ended early", "over"]
    created_by: str | None
    created_at: datetime
    ended_at: datetime | None
    ended_by: str | None


class WindowListResponse(Schema):
    items: list[WindowOut]


def window_out(window: Any, state: str) -> WindowOut:
    return WindowOut(
        id=window.id,
        site=window.site,
        uids=window.uids,
        filter=window.fleet_filter,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        cron=window.cron,
        rrule=window.rrule,
        duration_minutes=window.duration_minutes,
        timezone=window.timezone,
        note=window.note,
        state=state,
        created_by=window.created_by,
        created_at=window.created_at,
        ended_at=window.ended_at,
        ended_by=window.ended_by,
    )
