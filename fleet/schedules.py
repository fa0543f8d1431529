"""Operating hours and maintenance windows as pure rules: no Flask, no database.

A `Schedule` is a site's (or one device's) weekly hours in an IANA time zone,
with public holidays and one-off closures. Hours are local wall-clock times;
the time zone library, not this code, knows when daylight saving starts.

A span belongs to the day it starts on: "fri 20:00-02:00" is open until 02:00
on Saturday, and a holiday or closure on a day closes the spans starting that
day (a Friday-night span still runs into a Saturday holiday).

A `WindowRule` is a maintenance window: one-off (start and end) or recurring
(a cron expression, evaluated by croniter, or an RRULE, by python-dateutil,
each occurrence lasting `duration_minutes`), in its own time zone.

The `holidays`, `croniter` and `dateutil` libraries are imported where they are
used: listing the `flask` commands must not load them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
MAX_SPANS_PER_DAY = 8
MAX_CLOSURES = 200
MAX_CLOSURE_DAYS = 400
MAX_NOTE = 200
# How far `next_change` looks: beyond a year of closure, "no change ahead" is the answer.
LOOKAHEAD_DAYS = (2, 16, 400)

_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule or window that cannot be used; `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def zone(name: Any, field: str = "timezone") -> ZoneInfo:
    """The IANA time zone called `name`, or a ScheduleError naming `field`."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith("/"):
        raise ScheduleError(field, "must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(field, f"unknown time zone {name!r}") from None


def _minutes(text: Any, field: str) -> int:
    match = _CLOCK.match(text) if isinstance(text, str) else None
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ScheduleError(field, "times are HH:MM, 00:00 to 24:00")
    return int(match.group(1)) * 60 + int(match.group(2))


def _clock(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}" if minutes != DAY_MINUTES else "24:00"


@dataclass(frozen=True, order=True)
class Span:
    """Open from `start` to `end`, minutes after its day's local midnight (end may pass 24:00)."""

    start: int
    end: int

    @classmethod
    def parse(cls, pair: Any, field: str) -> Span:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ScheduleError(field, 'a span is ["HH:MM", "HH:MM"]')
        start, end = _minutes(pair[0], f"{field}[0]"), _minutes(pair[1], f"{field}[1]")
        if start == DAY_MINUTES:
            raise ScheduleError(f"{field}[0]", "a span cannot start at 24:00")
        if start == end:
            raise ScheduleError(field, "a span must not be empty")
        # An end at or before the start crosses midnight: "22:00-02:00".
        return cls(start, end if end > start else end + DAY_MINUTES)

    def pair(self) -> list[str]:
        return [
            _clock(self.start),
            _clock(self.end % DAY_MINUTES if self.end > DAY_MINUTES else self.end),
        ]

    def __str__(self) -> str:
        return "-".join(self.pair())


@dataclass(frozen=True)
class Closure:
    first: date
    last: date
    note: str = ""

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class HolidayRule:
    country: str
    subdivision: str | None = None

    def covers(self, day: date) -> bool:
        return day in _holiday_calendar(self.country, self.subdivision)

    def name_of(self, day: date) -> str | None:
        return _holiday_calendar(self.country, self.subdivision).get(day)

    def __str__(self) -> str:
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country


@lru_cache(maxsize=256)
def _holiday_calendar(country: str, subdivision: str | None) -> Any:
    # Building a country's calendar costs about 0.1 s, so each is built once per process.
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision)


def holiday_rule(data: Any, field: str = "holidays") -> HolidayRule | None:
    """{"country": "DE", "subdivision": "BE"} (or null) as a rule the `holidays` library knows."""
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("country"), str):
        raise ScheduleError(field, 'is {"country": "DE", "subdivision": "BE"} or null')
    import holidays

    country = data["country"].strip().upper()
    subdivision = data.get("subdivision")
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ScheduleError(f"{field}.country", f"no public holidays known for {country!r}")
    if subdivision is not None:
        if not isinstance(subdivision, str) or subdivision.strip().upper() not in {
            code.upper() for code in supported[country]
        }:
            raise ScheduleError(f"{field}.subdivision", f"not a subdivision of {country}")
        subdivision = next(
            c for c in supported[country] if c.upper() == subdivision.strip().upper()
        )
    return HolidayRule(country, subdivision)


def parse_holidays_code(code: str) -> HolidayRule:
    """ "DE-BE" or "DE" (the command line's form) as a rule."""
    country, _, subdivision = code.partition("-")
    return holiday_rule({"country": country, "subdivision": subdivision or None}, "--holidays")


def _closure(data: Any, field: str) -> Closure:
    if not isinstance(data, dict):
        raise ScheduleError(field, 'a closure is {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}')
    try:
        first = date.fromisoformat(data.get("from"))
        last = date.fromisoformat(data.get("to", data.get("from")))
    except (TypeError, ValueError):
        raise ScheduleError(field, "from and to are dates, YYYY-MM-DD") from None
    if last < first:
        raise ScheduleError(f"{field}.to", "must not be before from")
    if (last - first).days > MAX_CLOSURE_DAYS:
        raise ScheduleError(field, f"a closure lasts at most {MAX_CLOSURE_DAYS} days")
    note = data.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise ScheduleError(f"{field}.note", f"is text of at most {MAX_NOTE} characters")
    return Closure(first, last, note)


def _weekly(data: Any) -> tuple[tuple[Span, ...], ...] | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ScheduleError("weekly", 'is {"mon": [["08:00", "20:00"]], ...}')
    unknown = set(data) - set(DAYS)
    if unknown:
        raise ScheduleError(
            "weekly", f"unknown day(s) {sorted(unknown)}; days are {', '.join(DAYS)}"
        )
    days = []
    for day in DAYS:
        spans = data.get(day) or []
        if not isinstance(spans, list) or len(spans) > MAX_SPANS_PER_DAY:
            raise ScheduleError(f"weekly.{day}", f"is a list of at most {MAX_SPANS_PER_DAY} spans")
        days.append(tuple(sorted(Span.parse(s, f"weekly.{day}[{i}]") for i, s in enumerate(spans))))
    return tuple(days)


@dataclass(frozen=True)
class Schedule:
    """When devices are expected on; `weekly` None means every hour of every day."""

    timezone: str
    weekly: tuple[tuple[Span, ...], ...] | None = None
    holidays: HolidayRule | None = None
    closures: tuple[Closure, ...] = ()

    @classmethod
    def from_dict(cls, data: Any) -> Schedule:
        """The API's body (or the stored form) as a schedule; a ScheduleError names the field."""
        if not isinstance(data, dict):
            raise ScheduleError("body", "a schedule is a JSON object")
        zone(data.get("timezone"))
        closures = data.get("closures") or []
        if not isinstance(closures, list) or len(closures) > MAX_CLOSURES:
            raise ScheduleError("closures", f"is a list of at most {MAX_CLOSURES} closures")
        return cls(
            timezone=data["timezone"],
            weekly=_weekly(data.get("weekly")),
            holidays=holiday_rule(data.get("holidays")),
            closures=tuple(_closure(c, f"closures[{i}]") for i, c in enumerate(closures)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored and served form (the PUT body's shape)."""
        return {
            "timezone": self.timezone,
            "weekly": None
            if self.weekly is None
            else {
                day: [span.pair() for span in spans]
                for day, spans in zip(DAYS, self.weekly, strict=True)
            },
            "holidays": None
            if self.holidays is None
            else {"country": self.holidays.country, "subdivision": self.holidays.subdivision},
            "closures": [
                {"from": c.first.isoformat(), "to": c.last.isoformat(), "note": c.note}
                for c in self.closures
            ],
        }

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def closed_day(self, day: date) -> str | None:
        """Why this local date is closed all day (a closure's note, a holiday's name), or None."""
        for closure in self.closures:
            if closure.covers(day):
                return closure.note or "closed"
        if self.holidays is not None and self.holidays.covers(day):
            return self.holidays.name_of(day) or "public holiday"
        return None

    def spans_of(self, day: date) -> tuple[Span, ...]:
        """The spans that start on this local date (none when it is closed)."""
        if self.closed_day(day) is not None:
            return ()
        if self.weekly is None:
            return (Span(0, DAY_MINUTES),)
        return self.weekly[day.weekday()]

    def open_spans(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The UTC intervals in [start, end) when devices are expected on, merged and in order."""
        tz = self.zone
        day = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date()
        intervals: list[tuple[datetime, datetime]] = []
        while day <= last:
            for span in self.spans_of(day):
                opens, closes = _utc(day, span.start, tz), _utc(day, span.end, tz)
                opens, closes = max(opens, start), min(closes, end)
                if opens < closes:
                    intervals.append((opens, closes))
            day += timedelta(days=1)
        return _merged(intervals)

    def is_open(self, at: datetime) -> bool:
        """Whether devices are expected on at this instant."""
        return bool(self.open_spans(at, at + timedelta(microseconds=1)))

    def next_change(self, at: datetime) -> Change | None:
        """The next opening (when closed at `at`) or closing (when open); None within a year."""
        open_now = self.is_open(at)
        for days in LOOKAHEAD_DAYS:
            horizon = at + timedelta(days=days)
            spans = self.open_spans(at, horizon)
            if open_now and spans[0][1] < horizon:
                return Change(spans[0][1], opens=False)
            if not open_now and spans:
                return Change(spans[0][0], opens=True)
        return None

    def last_opening(self, at: datetime) -> datetime | None:
        """When the open span holding `at` began (up to two days back), or None if closed."""
        spans = self.open_spans(at - timedelta(days=2), at + timedelta(microseconds=1))
        return spans[-1][0] if spans and spans[-1][1] > at else None

    def describe(self) -> list[str]:
        """The weekly hours in words, a line per group of days with the same spans."""
        if self.weekly is None:
            return ["every day, all day"]
        lines = []
        for day, spans in zip(DAYS, self.weekly, strict=True):
            lines.append(f"{day} " + (", ".join(str(s) for s in spans) if spans else "closed"))
        return lines


@dataclass(frozen=True)
class Change:
    at: datetime
    opens: bool


def _utc(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    # A wall time inside a spring-forward gap maps by the offset before the change
    # (fold=0): 02:30 on the last Sunday of March in Berlin is 03:30 CEST.
    moment = datetime.combine(day + timedelta(days=minutes // DAY_MINUTES), time(), tzinfo=tz)
    local = moment.replace(hour=minutes % DAY_MINUTES // 60, minute=minutes % 60)
    return local.astimezone(UTC)


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in sorted(intervals):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


# --- the command line's form: "mon-fri 08:00-20:00" ----------------------------------


def parse_hours(lines: list[str]) -> dict[str, list[list[str]]]:
    """`--hours` options ("mon-fri 08:00-12:00,13:00-20:00", "sat 10:00-14:00") as `weekly`."""
    weekly: dict[str, list[list[str]]] = {}
    for line in lines:
        days_part, _, spans_part = line.strip().partition(" ")
        if not spans_part.strip():
            raise ScheduleError("--hours", f"{line!r}: expected e.g. 'mon-fri 08:00-20:00'")
        spans = [s.strip().split("-") for s in spans_part.split(",")]
        if any(len(s) != 2 for s in spans):
            raise ScheduleError("--hours", f"{line!r}: spans are HH:MM-HH:MM")
        for day in _day_list(days_part):
            weekly.setdefault(day, []).extend(spans)
    return weekly


def schedule_from_text(
    timezone: str | None, hours: list[str], holidays_code: str | None, closures: list[str]
) -> dict[str, Any]:
    """The typed form (command line, dashboard) as the API's body.

    `hours` lines as `parse_hours` reads them (none: always open), `holidays_code`
    like "DE-BE", `closures` like "2026-12-24:2026-12-26:Christmas".
    """
    rule = parse_holidays_code(holidays_code) if holidays_code else None
    parsed = []
    for text in closures:
        first, _, rest = text.strip().partition(":")
        last, _, note = rest.partition(":")
        parsed.append({"from": first, "to": last or first, "note": note.strip()})
    return {
        "timezone": timezone or "UTC",
        "weekly": parse_hours(hours) if hours else None,
        "holidays": None
        if rule is None
        else {"country": rule.country, "subdivision": rule.subdivision},
        "closures": parsed,
    }


def _day_list(text: str) -> list[str]:
    days: list[str] = []
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ScheduleError(
                "--hours", f"{part!r}: days are {', '.join(DAYS)} or ranges like mon-fri"
            )
        start, stop = DAYS.index(first), DAYS.index(last or first)
        # "fri-mon" wraps over the weekend.
        span = range(start, stop + 1) if start <= stop else [*range(start, 7), *range(0, stop + 1)]
        days.extend(DAYS[i] for i in span)
    return days


# --- maintenance windows --------------------------------------------------------------

MAX_DURATION_MINUTES = 14 * 24 * 60


@dataclass(frozen=True)
class WindowRule:
    """When a maintenance window is on: [starts_at, ends_at), or each recurrence for its duration.

    A recurring window is bounded by `starts_at` and `ends_at` when they are given.
    """

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = None
    rrule: str | None = None
    duration_minutes: int | None = None
    timezone: str = "UTC"

    @property
    def recurring(self) -> bool:
        return bool(self.cron or self.rrule)

    def validate(self) -> WindowRule:
        """This rule, or a ScheduleError naming the field at fault."""
        zone(self.timezone)
        if self.cron and self.rrule:
            raise ScheduleError("cron", "give a cron expression or an rrule, not both")
        if self.recurring:
            self._validate_recurrence()
        elif self.starts_at is None or self.ends_at is None:
            raise ScheduleError("ends_at", "a one-off window needs starts_at and ends_at")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ScheduleError("ends_at", "must be after starts_at")
        return self

    def _validate_recurrence(self) -> None:
        if not self.duration_minutes or not 1 <= self.duration_minutes <= MAX_DURATION_MINUTES:
            raise ScheduleError(
                "duration_minutes", f"a recurring window lasts 1 to {MAX_DURATION_MINUTES} minutes"
            )
        if self.cron:
            from croniter import croniter

            if len(self.cron.split()) != 5 or not croniter.is_valid(self.cron):
                raise ScheduleError("cron", "is a five-field cron expression, e.g. '0 2 * * sun'")
        else:
            try:
                self._rrule()
            except (ValueError, TypeError) as error:
                raise ScheduleError("rrule", f"is not an RRULE: {error}") from None

    def _rrule(self) -> Any:
        from dateutil.rrule import rrulestr

        start = (self.starts_at or datetime(2000, 1, 1, tzinfo=UTC)).astimezone(zone(self.timezone))
        return rrulestr(self.rrule, dtstart=start.replace(second=0, microsecond=0))

    def occurrence_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The (start, end) of the occurrence holding `at`, or None when the window is not on."""
        if (self.starts_at and at < self.starts_at) or (self.ends_at and at >= self.ends_at):
            return None
        if not self.recurring:
            return (self.starts_at, self.ends_at)  # type: ignore[return-value]
        start = self._previous_start(at)
        if start is None:
            return None
        end = start + timedelta(minutes=self.duration_minutes or 0)
        if self.ends_at:
            end = min(end, self.ends_at)
        return (start, end) if start <= at < end else None

    def is_active(self, at: datetime) -> bool:
        return self.occurrence_at(at) is not None

    def _previous_start(self, at: datetime) -> datetime | None:
        local = at.astimezone(zone(self.timezone))
        if self.cron:
            from croniter import croniter

            # croniter's get_prev is strictly before its start: a second later
            # makes an occurrence starting exactly at `at` count.
            found = croniter(self.cron, local + timedelta(seconds=1)).get_prev(datetime)
        else:
            found = self._rrule().before(local, inc=True)
        return None if found is None else found.astimezone(UTC)

    def next_start(self, at: datetime) -> datetime | None:
        """The next occurrence's start after `at` (for a one-off, its start if still ahead)."""
        if not self.recurring:
            return self.starts_at if self.starts_at and self.starts_at > at else None
        local = max(at, self.starts_at or at).astimezone(zone(self.timezone))
        if self.cron:
            from croniter import croniter

            found = croniter(self.cron, local).get_next(datetime)
        else:
            found = self._rrule().after(local)
        if found is None or (self.ends_at and found >= self.ends_at):
            return None
        return found.astimezone(UTC)
