"""Operating hours and maintenance windows: setting, listing, ending, and what the pages show.

Every change is logged to the alerts' log with its actor (the Events page shows
it) and then brought into effect by a schedule tick at once, rather than at the
next sweep, so a window made from the dashboard silences its devices before the
page reloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from fleet.alert_models import AlertLogKind
from fleet.errors import InvalidField, NotFound, StateConflict
from fleet.extensions import db
from fleet.hours_models import MaintenanceWindow, OperatingHours
from fleet.models import Device
from fleet.schedules import Change, Schedule, ScheduleError, WindowRule
from fleet.services import schedule_tick
from fleet.services.alerts.audit import write_log
from fleet.services.device_state import get_device
from fleet.services.queries import DeviceFilter

MAX_UIDS = 1000


def _schedule(data: Any) -> Schedule:
    try:
        return Schedule.from_dict(data)
    except ScheduleError as error:
        raise InvalidField(error.field, error.message) from None


def get_site_hours(site: str) -> OperatingHours | None:
    """The site's hours, or None (always open)."""
    return db.session.execute(
        select(OperatingHours).where(OperatingHours.site == site)
    ).scalar_one_or_none()


def set_site_hours(site: str, data: Any, actor: str | None, now: datetime) -> OperatingHours:
    """Set (or replace) a site's hours; logged, and in effect at once."""
    schedule = _schedule(data)
    row = _store(get_site_hours(site), schedule, actor, now, site=site)
    _log_hours(f"site {site}", schedule, actor, now, site=site)
    return _commit_and_tick(row, site, now)


def clear_site_hours(site: str, actor: str | None, now: datetime) -> None:
    """Remove a site's hours: it is always open again."""
    row = get_site_hours(site)
    if row is None:
        raise NotFound(f"site {site!r} has no operating hours", {"site": site})
    db.session.delete(row)
    _log_hours(f"site {site}", None, actor, now, site=site)
    _commit_and_tick(None, site, now)


def device_hours(device_id: int) -> OperatingHours | None:
    return db.session.execute(
        select(OperatingHours).where(OperatingHours.device_id == device_id)
    ).scalar_one_or_none()


def set_device_hours(uid: str, data: Any, actor: str | None, now: datetime) -> OperatingHours:
    """Give one device hours of its own, overriding its site's."""
    device = get_device(uid)
    schedule = _schedule(data)
    row = _store(device_hours(device.id), schedule, actor, now, device_id=device.id)
    _log_hours(f"device {uid}", schedule, actor, now, uid=uid)
    return _commit_and_tick(row, None, now)


def clear_device_hours(uid: str, actor: str | None, now: datetime) -> None:
    """Remove a device's own hours: its site's apply again."""
    device = get_device(uid)
    row = device_hours(device.id)
    if row is None:
        raise NotFound(f"device {uid!r} has no hours of its own", {"uid": uid})
    db.session.delete(row)
    _log_hours(f"device {uid}", None, actor, now, uid=uid)
    _commit_and_tick(None, device.site, now)


def _log_hours(
    owner: str, schedule: Schedule | None, actor: str | None, now: datetime, **key: str
) -> None:
    """The alerts' log entry for a change of hours (None: removed)."""
    if schedule is None:
        message = f"operating hours of {owner} removed"
    else:
        message = f"operating hours of {owner} set: {schedule.timezone}; " + "; ".join(
            schedule.describe()
        )
    details = {**key, "schedule": None if schedule is None else schedule.to_dict()}
    write_log(AlertLogKind.SCHEDULE_CHANGED, message, actor, now, details=details)


def _store(
    row: OperatingHours | None, schedule: Schedule, actor: str | None, now: datetime, **key: Any
) -> OperatingHours:
    if row is None:
        row = OperatingHours(version=0, **key)
        db.session.add(row)
    row.schedule = schedule.to_dict()
    row.version = (row.version or 0) + 1
    row.updated_at = now
    row.updated_by = actor
    return row


def _commit_and_tick(row: Any, site: str | None, now: datetime) -> Any:
    db.session.commit()
    if site:
        schedule_tick.forget_site(site)
    schedule_tick.run_schedule_tick(now)
    return row


# --- maintenance windows ------------------------------------------------------------


@dataclass(frozen=True)
class WindowSpec:
    site: str | None = None
    uids: list[str] | None = None
    fleet_filter: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = None
    rrule: str | None = None
    duration_minutes: int | None = None
    timezone: str | None = None
    note: str | None = None


def filter_of(query: str) -> DeviceFilter:
    """A saved fleet filter (the grid's URL query, e.g. "site=Mall&q=lobby") as a fleet view."""
    # The grid's own parser, so a window's filter means exactly what the grid shows for it.
    from dashboard.params import device_filter

    return device_filter(MultiDict(parse_qsl(query.lstrip("?"), keep_blank_values=False)))


def _normal_filter(query: str) -> str:
    """The filter's query without paging and sorting; InvalidField when it filters nothing."""
    pairs = [
        (key, value)
        for key, value in parse_qsl(query.strip().lstrip("?"))
        if key not in ("page", "per_page", "sort") and value
    ]
    view = filter_of(urlencode(pairs))
    if view == DeviceFilter(per_page=view.per_page):
        raise InvalidField("filter", "names no filter the fleet grid knows (status, site, q, ...)")
    return urlencode(pairs)


def _targets(spec: WindowSpec) -> dict[str, Any]:
    given = [name for name in ("site", "uids", "fleet_filter") if getattr(spec, name)]
    if len(given) != 1:
        raise InvalidField("site", "give exactly one of site, uids or filter")
    if spec.uids:
        if len(spec.uids) > MAX_UIDS:
            raise InvalidField("uids", f"at most {MAX_UIDS} devices")
        known = set(
            db.session.execute(select(Device.uid).where(Device.uid.in_(spec.uids))).scalars()
        )
        unknown = sorted(set(spec.uids) - known)
        if unknown:
            raise InvalidField("uids", f"unknown device(s): {', '.join(unknown[:10])}")
        return {"uids": sorted(set(spec.uids))}
    if spec.fleet_filter:
        return {"fleet_filter": _normal_filter(spec.fleet_filter)}
    return {"site": spec.site}


def _rule(spec: WindowSpec, now: datetime) -> WindowRule:
    timezone = spec.timezone
    if timezone is None and spec.site:
        hours = get_site_hours(spec.site)
        timezone = hours.schedule["timezone"] if hours else None
    starts_at = spec.starts_at
    if starts_at is None and not (spec.cron or spec.rrule):
        starts_at = now
    rule = WindowRule(
        starts_at=starts_at,
        ends_at=spec.ends_at,
        cron=spec.cron or None,
        rrule=spec.rrule or None,
        duration_minutes=spec.duration_minutes,
        timezone=timezone or "UTC",
    )
    try:
        rule.validate()
    except ScheduleError as error:
        raise InvalidField(error.field, error.message) from None
    if rule.ends_at is not None and rule.ends_at <= now:
        raise InvalidField("ends_at", "is already past")
    return rule


def create_window(spec: WindowSpec, actor: str | None, now: datetime) -> MaintenanceWindow:
    """Make a maintenance window; logged, and in effect at once if it is on now."""
    targets = _targets(spec)
    rule = _rule(spec, now)
    window = MaintenanceWindow(
        **targets,
        starts_at=rule.starts_at,
        ends_at=rule.ends_at,
        cron=rule.cron,
        rrule=rule.rrule,
        duration_minutes=rule.duration_minutes if rule.recurring else None,
        timezone=rule.timezone,
        note=(spec.note or "").strip()[:500] or None,
        created_by=actor,
        created_at=now,
        active=False,
    )
    db.session.add(window)
    db.session.flush()
    write_log(
        AlertLogKind.MAINTENANCE_CREATED,
        f"maintenance window #{window.id} for {schedule_tick.describe_target(window)} created: "
        + describe_when(window),
        actor,
        now,
        details=schedule_tick.log_details(window),
    )
    return _commit_and_tick(window, window.site, now)


def end_window(window_id: int, actor: str | None, now: datetime) -> MaintenanceWindow:
    """End a window early (or cancel one not begun); its devices are expected on again at once."""
    window = get_window(window_id)
    if window.closed_at is not None:
        raise StateConflict(f"maintenance window #{window_id} is already over", {"id": window_id})
    window.ended_at = now
    window.ended_by = actor
    window.closed_at = now
    window.active = False
    write_log(
        AlertLogKind.MAINTENANCE_ENDED_EARLY,
        f"maintenance window #{window.id} for {schedule_tick.describe_target(window)} ended early",
        actor,
        now,
        details=schedule_tick.log_details(window),
    )
    return _commit_and_tick(window, window.site, now)


def get_window(window_id: int) -> MaintenanceWindow:
    # Ids are 32-bit integers: a larger one in a URL names no window (not a database error).
    window = db.session.get(MaintenanceWindow, window_id) if 0 < window_id < 2**31 else None
    if window is None:
        raise NotFound(f"no maintenance window #{window_id}", {"id": window_id})
    return window


def list_windows(limit: int = 200) -> list[MaintenanceWindow]:
    """Windows not over yet first (by start), then the newest finished ones."""
    current = db.session.execute(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.closed_at.is_(None))
        .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
        .limit(limit)
    ).scalars()
    done = db.session.execute(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.closed_at.is_not(None))
        .order_by(MaintenanceWindow.closed_at.desc(), MaintenanceWindow.id.desc())
        .limit(limit)
    ).scalars()
    return [*current, *done]


def describe_when(window: MaintenanceWindow) -> str:
    """When a window is on, in words (UTC for one-off times, its zone for a recurrence)."""
    if window.cron:
        return f"cron '{window.cron}' ({window.timezone}) for {window.duration_minutes} min"
    if window.rrule:
        return f"RRULE {window.rrule} ({window.timezone}) for {window.duration_minutes} min"
    ends = window.ends_at.strftime("%Y-%m-%d %H:%M UTC") if window.ends_at else "until ended"
    return f"{window.starts_at:%Y-%m-%d %H:%M UTC} to {ends}"


def window_state(window: MaintenanceWindow, now: datetime) -> str:
    """ "on", "scheduled", "ended early" or "over", for the lists."""
    if window.ended_at is not None:
        return "ended early"
    if window.closed_at is not None:
        return "over"
    return "on" if schedule_tick.window_rule(window).is_active(now) else "scheduled"


# --- what the pages show ------------------------------------------------------------


@dataclass(frozen=True)
class HoursView:
    """A schedule as a page shows it: its hours in words and the next opening or closing."""

    owner: str  # "site" or "device"
    schedule: Schedule | None
    open_now: bool
    next_change: Change | None
    windows: list[MaintenanceWindow]


def site_hours_view(site: str, now: datetime) -> HoursView:
    """The site schedule page: hours, the next change, and the site's windows."""
    row = get_site_hours(site)
    windows = [w for w in list_windows() if w.site == site and w.closed_at is None]
    return _view("site", row, windows, now)


def device_hours_view(device: Device, now: datetime) -> HoursView:
    """The device page's hours: its own (if any) or its site's, and the windows naming it."""
    row = device_hours(device.id)
    owner = "device"
    if row is None and device.site:
        row, owner = get_site_hours(device.site), "site"
    windows = [
        w
        for w in list_windows()
        if w.closed_at is None
        and ((w.site == device.site and w.site) or device.uid in (w.uids or []))
    ]
    return _view(owner, row, windows, now)


def _view(owner: str, row: OperatingHours | None, windows: list, now: datetime) -> HoursView:
    schedule = Schedule.from_dict(row.schedule) if row else None
    return HoursView(
        owner=owner,
        schedule=schedule,
        open_now=schedule.is_open(now) if schedule else True,
        next_change=schedule.next_change(now) if schedule else None,
        windows=windows,
    )
