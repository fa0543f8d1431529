"""The Events page: device events and the alerts' log in one time-ordered list.

Two tables hold what happened: `device_event` (a device's transitions and the
operator actions on it) and `alert_log` (fleet-level actions: rule and channel
changes, incidents, monitoring gaps, and whatever kinds are added later). The
page reads both through one UNION ALL, so paging, counting and filtering are
the database's work, and an entry of a kind this module has never heard of is
still listed, from its kind, message, actor and details.

Costs stay bounded at millions of events (docs/benchmarks.md, Events page):
- the device and site filters match devices first (the fleet's size), then
  their events through the (device_id, created_at) index;
- the reason filter, a substring search no index serves, looks only through
  the newest REASON_SCAN_EVENTS device events;
- the total is counted up to COUNT_CAP and shown as "over N" beyond it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    String,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from fleet.alert_models import AlertLog, AlertLogKind, Incident, IncidentDevice
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.rules import Source
from fleet.services.events import EventKind
from fleet.services.queries import contains

DEVICE = "device"
ALERT = "alert"
# The source shown for an alerts' log entry that no person made (an incident the
# rules opened, a monitoring gap); one an operator made shows as "operator".
ALERTS_SOURCE = "alerts"
SOURCES = (*Source, ALERTS_SOURCE)

PER_PAGE = 50
COUNT_CAP = 10_000
REASON_SCAN_EVENTS = 100_000
# A poll after a long absence answers at most this many new entries; the page says to reload.
MAX_NEW = 200


def alert_log_kinds() -> list[str]:
    """Every kind the alerts' log may hold, including those added to AlertLogKind later."""
    return [value for name, value in vars(AlertLogKind).items() if name.isupper()]


def kinds() -> list[str]:
    """The kinds the kind filter offers: device events, then the alerts' log."""
    return [*EventKind, *alert_log_kinds()]


@dataclass(frozen=True)
class LogFilter:
    """An Events page view as it appears in its URL."""

    device: str | None = None  # part of a uid, any case
    site: str | None = None  # part of a site name, any case
    reason: str | None = None  # part of a reason or log message, any case
    source: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1

    @property
    def live(self) -> bool:
        """Whether new entries can appear at the top of this view: its first page, open-ended."""
        return self.page == 1 and self.until is None


@dataclass(frozen=True)
class Entry:
    """One line of the Events page, from either table."""

    origin: str  # DEVICE or ALERT
    id: int
    kind: str
    created_at: datetime
    text: str  # a device event's reason, a log entry's message
    source: str
    actor: str | None
    from_status: str | None
    to_status: str | None
    heartbeat_age_seconds: float | None
    details: dict[str, Any] | None
    uid: str | None
    site: str | None

    @property
    def key(self) -> str:
        """An id unique across both tables, for the page's rows."""
        return f"{self.origin}-{self.id}"


@dataclass(frozen=True)
class Cursor:
    """The newest ids of both tables when a page was drawn; a poll asks for what came after."""

    event_id: int = 0
    log_id: int = 0


@dataclass(frozen=True)
class EventsScreen:
    entries: list[Entry]
    page: int
    pages: int
    total: int
    capped: bool  # the total is a lower bound: counting stopped at COUNT_CAP
    has_next: bool
    cursor: Cursor
    view: LogFilter
    reason_scope: int  # how many of the newest device events a reason search covers


@dataclass(frozen=True)
class NewEntries:
    entries: list[Entry]
    cursor: Cursor
    more: bool  # over MAX_NEW arrived: the page should be reloaded to see them all


def events_screen(view: LogFilter) -> EventsScreen:
    """One page of the Events page, newest first, with its (capped) total and a poll cursor.

    1. Take the cursor first: an entry committed meanwhile is then both on the
       page and in the first poll (the page drops the copy), never in neither.
    2. Count up to COUNT_CAP, and clamp the page number to the last page.
    3. Read the page, and one row more to tell whether another page follows.
    """
    cursor = latest_cursor()
    floor = _reason_floor(view)
    total = _count(view, floor)
    capped = total > COUNT_CAP
    # Offsets cost their length, so paging stops at the counted entries; older
    # ones are a time filter away ("To"), which the indexes serve at any depth.
    pages = max(1, -(-min(total, COUNT_CAP) // PER_PAGE))
    page = min(view.page, pages)
    offset = (page - 1) * PER_PAGE
    # Nothing counted, nothing to read: a search that matches nothing scans only once.
    rows = (
        db.session.execute(_listing(view, floor, None, PER_PAGE + 1, offset)).all() if total else []
    )
    return EventsScreen(
        entries=[_entry(row) for row in rows[:PER_PAGE]],
        page=page,
        pages=pages,
        total=total,
        capped=capped,
        has_next=len(rows) > PER_PAGE and page < pages,
        cursor=cursor,
        view=dataclasses.replace(view, page=page),
        reason_scope=REASON_SCAN_EVENTS,
    )


def new_entries(view: LogFilter, after: Cursor) -> NewEntries:
    """The entries of `view` added after `after`, newest first: the Events page's live update.

    Known limit: ids are handed out when rows are inserted, not when they
    commit, so a transaction still open while a later id commits and is
    polled (a sweep chunk's thousands of events) falls behind the cursor and
    shows only on the next load of the page.
    """
    entries = [_entry(row) for row in db.session.execute(_listing(view, None, after, MAX_NEW + 1))]
    newest = Cursor(
        max([after.event_id] + [e.id for e in entries if e.origin == DEVICE]),
        max([after.log_id] + [e.id for e in entries if e.origin == ALERT]),
    )
    # Entries of other views move the cursor too, so the next poll skips them cheaply.
    return NewEntries(
        entries[:MAX_NEW], max_cursor(newest, latest_cursor()), len(entries) > MAX_NEW
    )


def max_cursor(a: Cursor, b: Cursor) -> Cursor:
    return Cursor(max(a.event_id, b.event_id), max(a.log_id, b.log_id))


def latest_cursor() -> Cursor:
    """The newest id in each table (a primary-key lookup each)."""
    row = db.session.execute(
        select(
            select(func.max(DeviceEvent.id)).scalar_subquery(),
            select(func.max(AlertLog.id)).scalar_subquery(),
        )
    ).one()
    return Cursor(row[0] or 0, row[1] or 0)


def _entry(row: Any) -> Entry:
    return Entry(**row._mapping)


def _count(view: LogFilter, floor: datetime | None) -> int:
    """How many entries match, counting no further than one past COUNT_CAP."""
    capped = _union(view, floor, None, COUNT_CAP + 1).limit(COUNT_CAP + 1).subquery()
    return db.session.execute(select(func.count()).select_from(capped)).scalar_one()


def _listing(
    view: LogFilter, floor: datetime | None, after: Cursor | None, limit: int, offset: int = 0
) -> Select:
    """`limit` entries from `offset`, newest first.

    Each table gives its own newest `offset + limit` first: PostgreSQL reads
    those from its created_at index, where ordering the union as a whole
    would sort both tables (docs/benchmarks.md, Events page).
    """
    listing = _union(view, floor, after, offset + limit).subquery("entries")
    return (
        select(listing)
        .order_by(listing.c.created_at.desc(), listing.c.origin.desc(), listing.c.id.desc())
        .limit(limit)
        .offset(offset)
    )


def _union(view: LogFilter, floor: datetime | None, after: Cursor | None, each: int) -> Select:
    """The newest `each` matching entries of each table."""
    # A kind that is not a device event's may be any alerts' log kind, even
    # one added after this code was written: the log is searched for it.
    device_kind = view.kind is None or view.kind in set(EventKind)
    branches = []
    if view.source != ALERTS_SOURCE and device_kind:
        branches.append(_newest(_device_events(view, floor, after), DeviceEvent, each))
    if view.source in (None, Source.OPERATOR, ALERTS_SOURCE) and view.kind not in set(EventKind):
        branches.append(_newest(_alert_log(view, after), AlertLog, each))
    if not branches:  # a source no table has: an empty listing, still one query
        empty = _device_events(view, floor, after).where(literal_column("1") == 0)
        branches.append(_newest(empty, DeviceEvent, each))
    return union_all(*branches) if len(branches) > 1 else branches[0]


def _newest(query: Select, table: Any, each: int) -> Select:
    # Wrapped: SQLite takes no ORDER BY or LIMIT on a member of a UNION itself.
    return select(query.order_by(table.created_at.desc(), table.id.desc()).limit(each).subquery())


def _device_events(view: LogFilter, floor: datetime | None, after: Cursor | None) -> Select:
    query = select(
        literal_column(f"'{DEVICE}'", String).label("origin"),
        DeviceEvent.id,
        DeviceEvent.kind,
        DeviceEvent.created_at,
        DeviceEvent.reason.label("text"),
        DeviceEvent.source,
        DeviceEvent.actor,
        DeviceEvent.from_status,
        DeviceEvent.to_status,
        DeviceEvent.heartbeat_age_seconds,
        DeviceEvent.details,
        Device.uid,
        Device.site,
    ).join(Device, Device.id == DeviceEvent.device_id)
    if view.device or view.site:
        # Devices first: the fleet is far smaller than its events, and the
        # events of a few devices come from the (device_id, created_at) index.
        query = query.where(DeviceEvent.device_id.in_(_matching_devices(view)))
    conditions = _common(view, DeviceEvent.created_at, DeviceEvent.kind, DeviceEvent.reason)
    if view.source:
        conditions.append(DeviceEvent.source == view.source)
    if floor is not None:
        conditions.append(DeviceEvent.created_at >= floor)
    if after is not None:
        conditions.append(DeviceEvent.id > after.event_id)
    return query.where(*conditions)


# The site or device an alerts log entry not about an incident may name in its details.
_named_site = AlertLog.details["site"].as_string()
_named_uid = AlertLog.details["uid"].as_string()


def _alert_log(view: LogFilter, after: Cursor | None) -> Select:
    subject = Device.__table__.alias("subject")
    source = case((AlertLog.actor.is_not(None), Source.OPERATOR.value), else_=ALERTS_SOURCE)
    query = (
        select(
            literal_column(f"'{ALERT}'", String).label("origin"),
            AlertLog.id,
            AlertLog.kind,
            AlertLog.created_at,
            AlertLog.message.label("text"),
            source.label("source"),
            AlertLog.actor,
            cast(null(), String).label("from_status"),
            cast(null(), String).label("to_status"),
            cast(null(), Float).label("heartbeat_age_seconds"),
            AlertLog.details,
            func.coalesce(subject.c.uid, _named_uid).label("uid"),
            func.coalesce(Incident.site, _named_site).label("site"),
        )
        .outerjoin(Incident, Incident.id == AlertLog.incident_id)
        .outerjoin(subject, subject.c.id == Incident.device_id)
    )
    conditions = _common(view, AlertLog.created_at, AlertLog.kind, AlertLog.message)
    if view.source:
        conditions.append(source == view.source)
    if view.site:
        # An incident, or details that say {"site": ...} (a maintenance window), tell
        # which site an entry is about; rule and channel changes name none.
        conditions.append(or_(contains(Incident.site, view.site), contains(_named_site, view.site)))
    if view.device:
        conditions.append(
            or_(_names_device(subject.c.uid, view.device), contains(_named_uid, view.device))
        )
    if after is not None:
        conditions.append(AlertLog.id > after.log_id)
    return query.where(*conditions)


def _names_device(uid: ColumnElement[str], text: str) -> ColumnElement[bool]:
    """The incident's own device matches, or one of the devices a site outage names."""
    named = exists(
        select(IncidentDevice.device_id)
        .join(Device, Device.id == IncidentDevice.device_id)
        .where(IncidentDevice.incident_id == Incident.id, contains(Device.uid, text))
    )
    return or_(contains(uid, text), named)


def _common(view: LogFilter, created_at: Any, kind: Any, text: Any) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if view.kind:
        conditions.append(kind == view.kind)
    if view.reason:
        conditions.append(contains(text, view.reason))
    if view.since:
        conditions.append(created_at >= view.since)
    if view.until:
        conditions.append(created_at < view.until)
    return conditions


def _matching_devices(view: LogFilter) -> Select:
    conditions = []
    if view.device:
        conditions.append(contains(Device.uid, view.device))
    if view.site:
        conditions.append(contains(Device.site, view.site))
    return select(Device.id).where(*conditions)


def _reason_floor(view: LogFilter) -> datetime | None:
    """Where a reason search stops: the time of the REASON_SCAN_EVENTS-th newest device event."""
    if not view.reason:
        return None
    return db.session.execute(
        select(DeviceEvent.created_at)
        .order_by(DeviceEvent.created_at.desc())
        .offset(REASON_SCAN_EVENTS - 1)
        .limit(1)
    ).scalar()
