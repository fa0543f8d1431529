"""The schedule tick: keeps `device.expected_off` in step with operating hours and windows.

Run by every sweep. Whether a site is open is decided once per site and cached
per minute, keyed by the site's schedule version, so a change of one site's
hours invalidates that site alone (never a flush of the whole cache). Devices
are then updated set-based, a statement per state for all the sites in it
(`UPDATE ... WHERE site IN (...) AND expected_off IS DISTINCT FROM :state
RETURNING`), and one `expected_off` event is recorded per device that changed, in
the same transaction. Devices with hours of their own or named by a window are
the exceptions, decided one by one (few rows). A schedule is never evaluated
per device of a site, nor per row of the grid.

The opening check: a device expected on again that has not beaten within its
interval + grace since is an ordinary outage from then on, recorded as a
`silent_at_opening` event ("expected at 08:00, silent since 21:03"), from which
the alert rules open their incidents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from flask import current_app
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import defer, undefer
from sqlalchemy.sql.elements import ColumnElement

from fleet.alert_models import AlertLogKind
from fleet.extensions import db
from fleet.hours_models import MaintenanceWindow, OperatingHours
from fleet.models import Device
from fleet.rules import Source, Status
from fleet.schedules import Schedule, WindowRule
from fleet.services.alerts.audit import write_log
from fleet.services.device_state import thresholds_of
from fleet.services.events import Event, EventKind, ExpectedOff, expected_off_event, record_events
from fleet.services.locks import redis_client
from fleet.timeutil import utcnow

log = structlog.get_logger("pulseboard.schedule")

# Bind parameters per statement stay far under PostgreSQL's 65,535.
CHUNK = 1000

OPEN_CACHE_TTL_SECONDS = 180


@dataclass
class TickMemory:
    """What one process remembers between ticks, kept per app (so per database)."""

    # (site, schedule version, minute) -> open: one evaluation per site per minute. With
    # Redis the decisions are shared there instead (RQ runs each sweep in a fresh process).
    open_cache: dict[tuple[str, int, datetime], bool] = field(default_factory=dict)
    # site -> (state, minute) last applied here: a site is updated again when its
    # state changes, and once a minute for devices that joined it.
    applied: dict[str, tuple[str | None, datetime]] = field(default_factory=dict)
    # The minute devices of sites without hours or windows were last checked.
    swept_unscheduled: datetime | None = None
    # Devices decided one by one last tick: once no longer exceptions they take their site's.
    exceptions: set[int] = field(default_factory=set)


def _memory() -> TickMemory:
    return current_app.extensions.setdefault("pulseboard_schedule_tick", TickMemory())


@dataclass
class TickReport:
    changed: int = 0
    silent_at_opening: int = 0
    windows_opened: int = 0
    windows_closed: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


def forget_site(site: str) -> None:
    """Drop this one site's applied state here, so the next tick updates its devices at once.

    Its cached opening is keyed by the schedule's version, which the change bumped.
    """
    memory = _memory()
    memory.applied.pop(site, None)
    memory.swept_unscheduled = None


def window_rule(window: MaintenanceWindow) -> WindowRule:
    """A stored window as the pure rule that says when it is on."""
    return WindowRule(
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        cron=window.cron,
        rrule=window.rrule,
        duration_minutes=window.duration_minutes,
        timezone=window.timezone,
    )


def run_schedule_tick(now: datetime) -> TickReport:
    """Bring every device's expected-off state up to date at `now`; commits.

    1. Note the windows that opened or closed since the last tick (logged once each).
    2. Decide each scheduled or windowed site's state (cached per site per minute).
    3. Decide the exceptions one by one: devices with their own hours or in a window.
    4. Update the devices whose state differs, a statement per state, with their events.
    5. The opening check: devices expected on again and still silent past their grace.
    """
    report = TickReport()
    minute = now.replace(second=0, microsecond=0)
    windows = _open_windows(now, report)
    # The schedules themselves are read only where a decision is not cached (see _with_schedules).
    query = select(OperatingHours).options(defer(OperatingHours.schedule))
    hours = list(db.session.execute(query).scalars())
    site_states = _site_states(hours, windows, now, minute)
    exceptions = _exception_states(hours, windows, site_states, now)
    events = _apply_sites(site_states, set(exceptions), now, minute)
    events += _apply_devices(exceptions, now)
    report.changed = len(events)
    for event in events:
        state = event.details["expected_off"] or "none"
        report.by_state[state] = report.by_state.get(state, 0) + 1
    record_events(events)
    report.silent_at_opening = _opening_check(now, hours)
    db.session.commit()
    if report.changed or report.silent_at_opening:
        log.info("schedule_tick", **report.__dict__)
    return report


# --- windows ------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveWindow:
    window: MaintenanceWindow
    rule: WindowRule


def _open_windows(now: datetime, report: TickReport) -> list[ActiveWindow]:
    """The windows on now; logs each opening and closing once, and retires finished windows."""
    rows = db.session.execute(
        select(MaintenanceWindow).where(MaintenanceWindow.closed_at.is_(None))
    ).scalars()
    active = []
    for window in rows:
        rule = window_rule(window)
        on = rule.is_active(now)
        if on and not window.active:
            window.active = True
            report.windows_opened += 1
            _log_window(AlertLogKind.MAINTENANCE_OPENED, window, "opened", now)
        elif not on and window.active:
            window.active = False
            if window.site:
                forget_site(window.site)
            report.windows_closed += 1
            _log_window(AlertLogKind.MAINTENANCE_CLOSED, window, "closed", now)
        if window.ends_at is not None and now >= window.ends_at:
            window.closed_at = now
        if on:
            active.append(ActiveWindow(window, rule))
    return active


def describe_target(window: MaintenanceWindow) -> str:
    """What a window covers, in words."""
    if window.site:
        return f"site {window.site}"
    if window.uids:
        shown = ", ".join(window.uids[:5])
        more = f" and {len(window.uids) - 5} more" if len(window.uids) > 5 else ""
        return f"device{'s' if len(window.uids) > 1 else ''} {shown}{more}"
    return f"devices matching ?{window.fleet_filter}"


def log_details(window: MaintenanceWindow) -> dict[str, Any]:
    """A window's log details: the Events page finds the entry by the site or the one uid named."""
    one_uid = window.uids[0] if window.uids and len(window.uids) == 1 else None
    return {"window_id": window.id, "site": window.site, "uid": one_uid}


def _log_window(kind: str, window: MaintenanceWindow, what: str, now: datetime) -> None:
    note = f" ({window.note})" if window.note else ""
    write_log(
        kind,
        f"maintenance window #{window.id} for {describe_target(window)} {what}{note}",
        None,
        now,
        details=log_details(window),
    )


# --- deciding -----------------------------------------------------------------------


def _site_states(
    hours: list[OperatingHours], windows: list[ActiveWindow], now: datetime, minute: datetime
) -> dict[str, str | None]:
    """The state of every site that has hours or a window on: maintenance, off hours, or None."""
    site_rows = [row for row in hours if row.site is not None]
    opens = sites_open(site_rows, now, minute)
    states: dict[str, str | None] = {
        row.site: None if opens[row.site] else ExpectedOff.OFF_HOURS for row in site_rows
    }
    for active in windows:
        if active.window.site:
            states[active.window.site] = ExpectedOff.MAINTENANCE
    return states


def sites_open(rows: list[OperatingHours], now: datetime, minute: datetime) -> dict[str, bool]:
    """Whether each site's hours have it open now, evaluated once per site per minute.

    The cache key holds the site's schedule version, so a changed schedule is a miss
    for that site alone.
    """
    redis = redis_client()
    if redis is None:
        cache = _memory().open_cache
        _with_schedules([row for row in rows if (row.site, row.version, minute) not in cache])
        return {row.site: _open_in_process(row, now, minute) for row in rows}
    if not rows:
        return {}
    key = f"pulseboard:hours-open:{minute.isoformat()}"
    fields = [f"{row.site}\x00{row.version}" for row in rows]
    cached = redis.hmget(key, fields)
    _with_schedules([row for row, value in zip(rows, cached, strict=True) if value is None])
    opens: dict[str, bool] = {}
    missed: dict[str, int] = {}
    for row, name, value in zip(rows, fields, cached, strict=True):
        if value is None:
            opens[row.site] = Schedule.from_dict(row.schedule).is_open(now)
            missed[name] = int(opens[row.site])
        else:
            opens[row.site] = value == b"1"
    if missed:
        redis.hset(key, mapping=missed)
        redis.expire(key, OPEN_CACHE_TTL_SECONDS)
    return opens


def _with_schedules(rows: list[OperatingHours]) -> None:
    """Load the schedule of these rows (deferred by the tick's query) in one statement."""
    missing = [row.id for row in rows if "schedule" in inspect(row).unloaded]
    if missing:
        db.session.execute(
            select(OperatingHours)
            .where(OperatingHours.id.in_(missing))
            .options(undefer(OperatingHours.schedule))
        ).all()


def _open_in_process(row: OperatingHours, now: datetime, minute: datetime) -> bool:
    cache = _memory().open_cache
    key = (row.site or "", row.version, minute)
    if key not in cache:
        # Past minutes' entries can never be read again; they go as the minute turns.
        for stale in [k for k in cache if k[2] < minute]:
            del cache[stale]
        cache[key] = Schedule.from_dict(row.schedule).is_open(now)
    return cache[key]


def _exception_states(
    hours: list[OperatingHours],
    windows: list[ActiveWindow],
    site_states: dict[str, str | None],
    now: datetime,
) -> dict[int, str | None]:
    """device id -> state, for devices with their own hours or in a device or filter window."""
    own = {row.device_id: row for row in hours if row.device_id is not None}
    _with_schedules(list(own.values()))
    in_window = _window_device_ids(windows, now)
    memory = _memory()
    ids = set(own) | in_window | memory.exceptions
    memory.exceptions = set(own) | in_window
    if not ids:
        return {}
    sites = dict(db.session.execute(select(Device.id, Device.site).where(Device.id.in_(ids))).all())
    states: dict[int, str | None] = {}
    for device_id, site in sites.items():
        site_state = site_states.get(site) if site else None
        if device_id in in_window or site_state == ExpectedOff.MAINTENANCE:
            states[device_id] = ExpectedOff.MAINTENANCE
        elif device_id in own:
            is_open = Schedule.from_dict(own[device_id].schedule).is_open(now)
            states[device_id] = None if is_open else ExpectedOff.OFF_HOURS
        else:
            states[device_id] = site_state
    return states


def _window_device_ids(windows: list[ActiveWindow], now: datetime) -> set[int]:
    from fleet.services.hours import filter_of  # the URL filter's parser lives with the service

    ids: set[int] = set()
    for active in windows:
        window = active.window
        if window.uids:
            ids.update(
                db.session.execute(select(Device.id).where(Device.uid.in_(window.uids))).scalars()
            )
        elif window.fleet_filter:
            from fleet.services.queries import matching_device_ids

            ids.update(matching_device_ids(filter_of(window.fleet_filter), now))
    return ids


# --- applying -----------------------------------------------------------------------


def _apply_sites(
    site_states: dict[str, str | None], exceptions: set[int], now: datetime, minute: datetime
) -> list[Event]:
    """Update the devices of the sites whose state is new to this process (or each minute)."""
    memory = _memory()
    groups: dict[str | None, list[str]] = {}
    for site, state in site_states.items():
        if memory.applied.get(site) != (state, minute):
            groups.setdefault(state, []).append(site)
    events: list[Event] = []
    if memory.swept_unscheduled != minute:
        # Once a minute: devices still marked off whose site has no hours or window now
        # (a schedule removed, a window over, a device moved or without a site).
        memory.swept_unscheduled = minute
        stale = _marked_sites() - set(site_states)
        if None in stale:
            events += _set_state(Device.site.is_(None), None, exceptions, now)
        groups.setdefault(None, []).extend(site for site in stale if site is not None)
    for state, sites in groups.items():
        for start in range(0, len(sites), CHUNK):
            chunk = sites[start : start + CHUNK]
            events += _set_state(Device.site.in_(chunk), state, exceptions, now)
            memory.applied.update({site: (state, minute) for site in chunk})
    return events


def _marked_sites() -> set[str | None]:
    rows = db.session.execute(
        select(Device.site).where(Device.expected_off.is_not(None)).distinct()
    ).scalars()
    return set(rows)


def _apply_devices(exceptions: dict[int, str | None], now: datetime) -> list[Event]:
    groups: dict[str | None, list[int]] = {}
    for device_id, state in exceptions.items():
        groups.setdefault(state, []).append(device_id)
    events: list[Event] = []
    for state, ids in groups.items():
        for start in range(0, len(ids), CHUNK):
            events += _set_state(Device.id.in_(ids[start : start + CHUNK]), state, set(), now)
    return events


def _set_state(
    scope: ColumnElement[bool], state: str | None, exceptions: set[int], now: datetime
) -> list[Event]:
    """Set `state` on the devices in scope that are not in it yet; their events."""
    query = update(Device).where(scope, Device.expected_off.is_distinct_from(state))
    if exceptions:
        query = query.where(Device.id.not_in(exceptions))
    rows = db.session.execute(
        query.values(
            expected_off=state,
            expected_off_since=now,
            # Expected on again: the opening check watches for a heartbeat from here.
            expected_on_at=now if state is None else None,
            changed_at=utcnow(),
        )
        .returning(Device.id, Device.uid)
        .execution_options(synchronize_session=False)
    ).all()
    reason = _REASONS[state]
    return [expected_off_event(row.id, row.uid, state, reason=reason, now=now) for row in rows]


_REASONS = {
    ExpectedOff.OFF_HOURS: "outside operating hours",
    ExpectedOff.MAINTENANCE: "maintenance window",
    None: "expected on",
}


# --- the opening check --------------------------------------------------------------


def _opening_check(now: datetime, hours: list[OperatingHours]) -> int:
    """Record the devices still silent past their grace since they were expected on again."""
    rows = db.session.execute(
        select(
            Device.id,
            Device.uid,
            Device.site,
            Device.status,
            Device.expected_on_at,
            Device.last_heartbeat_at,
            Device.heartbeat_interval_seconds,
            Device.grace_period_seconds,
            Device.disconnect_after_seconds,
        ).where(Device.expected_on_at.is_not(None), Device.expected_off.is_(None))
    ).all()
    due = [row for row in rows if now >= _grace_ends(row)]
    if not due:
        return 0
    due_sites = {row.site for row in due}
    site_rows = [row for row in hours if row.site in due_sites]
    _with_schedules(site_rows)
    zones = {row.site: row.schedule.get("timezone") for row in site_rows}
    events = [_silent_event(row, zones.get(row.site), now) for row in due if _silent(row)]
    for start in range(0, len(due), CHUNK):
        db.session.execute(
            update(Device)
            .where(Device.id.in_([row.id for row in due[start : start + CHUNK]]))
            .values(expected_on_at=None)
            .execution_options(synchronize_session=False)
        )
    record_events(events)
    return len(events)


def _grace_ends(row: Any) -> datetime:
    return row.expected_on_at + timedelta(seconds=thresholds_of(row).offline_after)


def _silent(row: Any) -> bool:
    heard = row.last_heartbeat_at is not None and row.last_heartbeat_at >= row.expected_on_at
    return row.status != Status.CONNECTED and not heard and row.last_heartbeat_at is not None


def _silent_event(row: Any, timezone: str | None, now: datetime) -> Event:
    tz = ZoneInfo(timezone or "UTC")
    expected = row.expected_on_at.astimezone(tz).strftime("%H:%M")
    since = _local_when(row.last_heartbeat_at, row.expected_on_at, tz)
    return Event(
        device_id=row.id,
        uid=row.uid,
        kind=EventKind.SILENT_AT_OPENING,
        from_status=row.status,
        to_status=row.status,
        reason=f"expected at {expected}, silent since {since}",
        source=Source.SYSTEM,
        created_at=now,
        details={"expected_at": row.expected_on_at.isoformat(), "timezone": tz.key},
    )


def _local_when(moment: datetime, reference: datetime, tz: ZoneInfo) -> str:
    """A local time, with its date when it is not the reference's day."""
    local, ref = moment.astimezone(tz), reference.astimezone(tz)
    if local.date() == ref.date() or (ref.date() - local.date()).days == 1:
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")
