"""Read-side queries shared by the dashboard and the admin API: filters, counts, flapping.

Flapping (DESIGN section 2): a device whose number of status events in the
sliding window `FLAP_WINDOW_SECONDS` reaches `FLAP_THRESHOLD`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Integer, Select, and_, any_, func, literal, literal_column, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from fleet.extensions import db
from fleet.models import SEVERITY_SQL, Device, DeviceEvent
from fleet.rules import ReconnectState, Status
from fleet.services.events import EventKind, ExpectedOff


@dataclass(frozen=True)
class Sort:
    label: str  # as the fleet page offers it
    order: tuple[Any, ...] | None  # None: by the flap count, built in `_order`


# Problems first (disconnected, then temporarily offline, then connected). Written
# as literal SQL with no bound parameters, so that PostgreSQL and SQLite match the
# ORDER BY to the expression index ix_device_severity (fleet/models.py) and read a
# first page from the index instead of sorting the fleet.
SEVERITY = literal_column(SEVERITY_SQL, Integer)

# The one list of sort keys: the fleet page, the URL parser and the admin API's
# schema all read it.
SORTS = {
    # Disconnected, temporarily offline, flapping, connected: flapping is not a
    # column, so `_severity_page` splices the flapping devices in (see there).
    "severity": Sort("problems first", (SEVERITY, Device.last_heartbeat_at, Device.uid)),
    "status": Sort("status", (Device.status, Device.uid)),
    "last_heartbeat": Sort("latest heartbeat", (Device.last_heartbeat_at.desc(), Device.uid)),
    "stalest": Sort("stalest heartbeat", (Device.last_heartbeat_at, Device.uid)),
    "uid": Sort("uid", (Device.uid,)),
    "site": Sort("site", (Device.site, Device.uid)),
    "transitions": Sort("transitions in window", None),
}
DEFAULT_SORT = "severity"
# The page sizes the fleet page offers; the admin API takes any size up to MAX_PER_PAGE.
PER_PAGE_CHOICES = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
# The expected-off filter's values: each state, or "none" for devices expected on.
EXPECTED_ON = "none"
EXPECTED_OFF_FILTERS = (*(state.value for state in ExpectedOff), EXPECTED_ON)
# Beyond any real fleet: a larger page number in a URL is taken as no page number.
MAX_PAGE_NUMBER = 1_000_000


@dataclass(frozen=True)
class FlapSettings:
    window_seconds: int
    threshold: int

    def since(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.window_seconds)


def flap_settings() -> FlapSettings:
    config = current_app.config
    return FlapSettings(config["FLAP_WINDOW_SECONDS"], config["FLAP_THRESHOLD"])


@dataclass(frozen=True)
class DeviceFilter:
    """A fleet view as it appears in a URL: filters, sort and page."""

    status: str | None = None
    site: str | None = None
    flapping: bool | None = None
    reconnect_pending: bool | None = None
    # Everything a support desk should look at: not connected, flapping or a pending reconnect.
    attention: bool | None = None
    # "off_hours", "maintenance", or "none" for devices expected on.
    expected_off: str | None = None
    q: str | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


@dataclass
class DevicePage:
    items: list[tuple[Device, int]]  # each device with its status events in the flap window
    total: int
    page: int
    per_page: int
    flap: FlapSettings

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def in_flap_window(now: datetime, flap: FlapSettings) -> ColumnElement[bool]:
    """The events that count towards flapping: status events inside the window.

    Those recorded while the device was expected off (off hours, maintenance) are left out.
    """
    return and_(
        DeviceEvent.kind == EventKind.STATUS,
        DeviceEvent.created_at >= flap.since(now),
        DeviceEvent.expected_off.is_(None),
    )


def flap_counts_subquery(now: datetime, flap: FlapSettings):
    """device_id -> number of status events in the window."""
    return (
        select(DeviceEvent.device_id, func.count().label("flaps"))
        .where(in_flap_window(now, flap))
        .group_by(DeviceEvent.device_id)
        .subquery("flap_counts")
    )


def _conditions(view: DeviceFilter, flaps: Any, flap: FlapSettings, now: datetime) -> list:
    conditions: list[ColumnElement[bool]] = []
    if view.status:
        conditions.append(Device.status == view.status)
    if view.site:
        conditions.append(Device.site == view.site)
    if view.q:
        conditions.append(
            or_(
                contains(Device.uid, view.q),
                contains(Device.name, view.q),
                contains(Device.site, view.q),
            )
        )
    if view.flapping is not None:
        count = func.coalesce(flaps.c.flaps, 0)
        conditions.append(count >= flap.threshold if view.flapping else count < flap.threshold)
    if view.expected_off:
        conditions.append(
            Device.expected_off.is_(None)
            if view.expected_off == EXPECTED_ON
            else Device.expected_off == view.expected_off
        )
    if view.reconnect_pending:
        conditions.append(pending_reconnect(now))
    if view.attention:
        conditions.append(needs_attention(now, flap))
    return conditions


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """`column` holds `text`, in any case: the search of the fleet and of the Events page."""
    # A search for "50%" means the text, not a wildcard.
    literal = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{literal}%", escape="\\")


def among(column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values`, bound as one array on PostgreSQL.

    An IN list binds one parameter per value: for a sweep's thousands of
    devices, rendering and adapting them cost 100-250 ms where an array takes
    30 ms (docs/benchmarks.md, Alerts). SQLite has no arrays; it keeps the list.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(values)


def flapping_ids(now: datetime, flap: FlapSettings) -> Select:
    """Ids of the devices flapping now (a small set: only events inside the window are read)."""
    return (
        select(DeviceEvent.device_id)
        .where(in_flap_window(now, flap))
        .group_by(DeviceEvent.device_id)
        .having(func.count() >= flap.threshold)
    )


def needs_attention(now: datetime, flap: FlapSettings) -> ColumnElement[bool]:
    """Not connected, flapping, or with a reconnect pending."""
    return or_(
        Device.status != Status.CONNECTED.value,
        pending_reconnect(now),
        Device.id.in_(flapping_ids(now, flap)),
    )


def pending_reconnect(now: datetime) -> ColumnElement[bool]:
    return and_(Device.reconnect_state == ReconnectState.PENDING, Device.reconnect_expires_at > now)


def _order(query: Select, view: DeviceFilter, flaps: Any) -> Select:
    order = SORTS.get(view.sort, SORTS[DEFAULT_SORT]).order
    if order is None:
        return query.order_by(func.coalesce(flaps.c.flaps, 0).desc(), Device.uid)
    return query.order_by(*order)


def _filtered_ids(view: DeviceFilter, now: datetime, flap: FlapSettings) -> tuple[Select, Any]:
    """Ids of the devices matching the view; joins the flap counts only when the view needs them."""
    if view.flapping is None and view.sort != "transitions":
        return select(Device.id).where(*_conditions(view, None, flap, now)), None
    flaps = flap_counts_subquery(now, flap)
    query = (
        select(Device.id)
        .outerjoin(flaps, flaps.c.device_id == Device.id)
        .where(*_conditions(view, flaps, flap, now))
    )
    return query, flaps


def list_devices(view: DeviceFilter, now: datetime) -> DevicePage:
    """One page of devices matching the view, with the total and each device's flap count."""
    flap = flap_settings()
    per_page = max(1, min(view.per_page, MAX_PER_PAGE))
    page = max(1, view.page)
    query, flaps = _filtered_ids(view, now, flap)
    total = _count(query)
    # A page past the end (an old link, ?page=999) shows the last page, not "Page 999 of 6".
    page = min(page, max(1, -(-total // per_page)))
    # Sort narrow rows (ids only), then load the page's devices: sorting whole
    # rows of a large fleet costs far more (docs/benchmarks.md, Dashboard).
    offset = (page - 1) * per_page
    if view.sort == DEFAULT_SORT or view.sort not in SORTS:
        ids = _severity_page(query, now, flap, offset, per_page)
    else:
        ids = list(
            db.session.execute(_order(query, view, flaps).limit(per_page).offset(offset)).scalars()
        )
    return DevicePage(devices_with_flaps(ids, now), total, page, per_page, flap)


def _severity_page(
    query: Select, now: datetime, flap: FlapSettings, offset: int, limit: int
) -> list[int]:
    """One page in severity order: disconnected, temporarily offline, flapping, connected.

    Flapping depends on the clock (a sliding window of events), so no index can
    hold it. The order is read in three stretches instead, each from an index:
    the problem tiers from ix_device_severity, the flapping connected devices
    (few: only the window's events are read), then the other connected devices
    from ix_device_severity again, the flapping ones skipped. Only the
    stretches the page overlaps are read.
    """
    sort = SORTS[DEFAULT_SORT].order
    flapping = Device.id.in_(flapping_ids(now, flap))
    problems = query.where(SEVERITY < 2)
    connected = query.where(SEVERITY == 2)
    ids = list(db.session.execute(problems.order_by(*sort).offset(offset).limit(limit)).scalars())
    if len(ids) == limit:  # the usual first page of a fleet with problems: one index scan
        return ids
    # Where the problem tiers end: known from this read, unless it started past their end.
    before = offset + len(ids) if ids or not offset else _count(problems)
    offset = max(0, offset - before)
    flappers = list(
        db.session.execute(
            connected.where(flapping).order_by(Device.last_heartbeat_at, Device.uid)
        ).scalars()
    )
    ids += flappers[offset : offset + limit - len(ids)]
    offset = max(0, offset - len(flappers))
    if len(ids) < limit:
        rest = connected.where(~flapping).order_by(*sort).offset(offset).limit(limit - len(ids))
        ids += db.session.execute(rest).scalars()
    return ids


def _count(query: Select) -> int:
    return db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()


def matching_device_ids(
    view: DeviceFilter, now: datetime, among: list[int] | None = None
) -> list[int]:
    """Every device id matching the view's filters (all pages, or only `among`)."""
    query, _ = _filtered_ids(view, now, flap_settings())
    if among is not None:
        query = query.where(Device.id.in_(among))
    return list(db.session.execute(query).scalars())


def matching_devices(view: DeviceFilter, now: datetime) -> list[tuple[int, str]]:
    """(id, uid) of every device matching the view's filters (all pages), in id order.

    One query with no list of ids, so a bulk action over the whole fleet stays
    under PostgreSQL's cap of 65,535 bind parameters.
    """
    query, _ = _filtered_ids(view, now, flap_settings())
    rows = db.session.execute(query.add_columns(Device.uid).order_by(Device.id))
    return [(device_id, uid) for device_id, uid in rows]


def matching_devices_after(
    view: DeviceFilter, now: datetime, after_id: int, limit: int
) -> list[tuple[int, str]]:
    """(id, uid) of up to `limit` devices matching the view with ids above `after_id`, in id order.

    A bulk action walks the fleet with this, a chunk at a time, by the primary key.
    """
    query, _ = _filtered_ids(view, now, flap_settings())
    query = query.where(Device.id > after_id).add_columns(Device.uid)
    rows = db.session.execute(query.order_by(Device.id).limit(limit))
    return [(device_id, uid) for device_id, uid in rows]


def count_matching(view: DeviceFilter, now: datetime) -> int:
    """How many devices match the view's filters (all pages)."""
    query, _ = _filtered_ids(view, now, flap_settings())
    return _count(query)


def devices_by_status() -> dict[str, int]:
    """How many devices are in each status: one GROUP BY on an indexed column."""
    rows = db.session.execute(select(Device.status, func.count()).group_by(Device.status))
    return {status: count for status, count in rows}


def fleet_counts(now: datetime) -> dict[str, int]:
    """Devices per status, plus flapping and reconnect-pending counts."""
    counts = {status.value: 0 for status in Status}
    counts.update(devices_by_status())
    flap = flap_settings()
    flaps = flap_counts_subquery(now, flap)
    counts["flapping"] = db.session.execute(
        select(func.count()).select_from(flaps).where(flaps.c.flaps >= flap.threshold)
    ).scalar_one()
    counts["reconnect_pending"] = db.session.execute(
        select(func.count()).select_from(Device).where(pending_reconnect(now))
    ).scalar_one()
    counts["attention"] = db.session.execute(
        select(func.count()).select_from(Device).where(needs_attention(now, flap))
    ).scalar_one()
    counts.update(expected_off_counts())
    counts["total"] = sum(counts[status.value] for status in Status)
    return counts


def expected_off_counts() -> dict[str, int]:
    """Devices off hours and in maintenance: one GROUP BY on an indexed column."""
    counts = {state.value: 0 for state in ExpectedOff}
    rows = db.session.execute(
        select(Device.expected_off, func.count())
        .where(Device.expected_off.is_not(None))
        .group_by(Device.expected_off)
    )
    counts.update({state: count for state, count in rows})
    return counts


def flap_count(device_id: int, now: datetime) -> int:
    """Status events of one device in the flap window."""
    flap = flap_settings()
    return db.session.execute(
        select(func.count())
        .select_from(DeviceEvent)
        .where(DeviceEvent.device_id == device_id, in_flap_window(now, flap))
    ).scalar_one()


def anything_changed(since: datetime) -> bool:
    """Whether any device changed visibly after `since` (one probe of the changed_at index)."""
    query = select(Device.id).where(Device.changed_at > since).limit(1)
    return db.session.execute(query).first() is not None


def changed_among(device_ids: list[int], since: datetime) -> list[int]:
    """Which of these devices changed visibly after `since`, in id order."""
    if not device_ids:
        return []
    query = select(Device.id).where(Device.id.in_(device_ids), Device.changed_at > since)
    return list(db.session.execute(query.order_by(Device.id)).scalars())


def devices_with_flaps(device_ids: list[int], now: datetime) -> list[tuple[Device, int]]:
    """These devices in the given order, each with its status events in the flap window."""
    if not device_ids:
        return []
    flap = flap_settings()
    devices = db.session.execute(select(Device).where(Device.id.in_(device_ids))).scalars()
    by_id = {device.id: device for device in devices}
    counts = dict(
        db.session.execute(
            select(DeviceEvent.device_id, func.count())
            .where(DeviceEvent.device_id.in_(device_ids), in_flap_window(now, flap))
            .group_by(DeviceEvent.device_id)
        ).all()
    )
    return [(by_id[i], counts.get(i, 0)) for i in device_ids if i in by_id]


# The fleet page shows its Ping column only while a ping service reports: some
# device heard from it within this long. Without one the column would be a
# dash on every row.
PING_COLUMN_WINDOW = timedelta(hours=24)


def ping_service_reports(now: datetime) -> bool:
    """Whether any device got a ping result lately (stops at the first row found)."""
    query = select(Device.id).where(Device.ping_received_at > now - PING_COLUMN_WINDOW).limit(1)
    return db.session.execute(query).first() is not None


def site_names() -> list[str]:
    """Every site with at least one device, for filter menus."""
    return list(
        db.session.execute(
            select(Device.site).where(Device.site.is_not(None)).distinct().order_by(Device.site)
        ).scalars()
    )
