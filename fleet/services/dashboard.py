"""What each dashboard screen needs, one call per screen or action.

The poll is built so that a heartbeat that changes nothing visible costs the
page nothing: only `Device.changed_at` (bumped on visible changes) is
consulted, and a poll with nothing changed is one indexed range query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fleet import rules
from fleet.errors import InvalidInput
from fleet.extensions import db
from fleet.models import BulkAction, Device, DeviceCommand
from fleet.services import bulk, commands, device_state, history, hours, queries, reconnects
from fleet.services.availability import bars
from fleet.services.commands import CommandPanel, command_panel
from fleet.services.hours import HoursView
from fleet.services.queries import DeviceFilter, DevicePage, FlapSettings

# Changes are stamped with the `now` their transaction read, which may commit a
# moment later; the poll's cursor trails the clock by this much so such a
# change is still newer than the next poll's cursor. A change can thus be sent
# twice, which is harmless: the row is simply redrawn the same.
POLL_SLACK_SECONDS = 5


def counts_tag(counts: dict[str, int]) -> str:
    """The counters in a few bytes: the poll sends back the tag of those on screen."""
    return ".".join(str(counts[key]) for key in sorted(counts))


@dataclass(frozen=True)
class FleetScreen:
    page: DevicePage
    counts: dict[str, int]
    sites: list[str]
    now: datetime
    cursor: datetime
    show_ping: bool  # the Ping column, shown only while a ping service reports
    # Each shown device's latest command, by device id (the grid's command cell).
    commands: dict[int, DeviceCommand] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return counts_tag(self.counts)


@dataclass(frozen=True)
class FleetPoll:
    rows: list[tuple[Device, int]]
    outside_view: set[int]  # shown devices that no longer match the view's filters
    counts: dict[str, int]
    cursor: datetime
    commands: dict[int, DeviceCommand] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return counts_tag(self.counts)


def poll_cursor(now: datetime) -> datetime:
    """The `since` the next poll should send."""
    return now - timedelta(seconds=POLL_SLACK_SECONDS)


def fleet_screen(view: DeviceFilter, now: datetime) -> FleetScreen:
    """The fleet page: one page of devices, the counters and the site menu."""
    page = queries.list_devices(view, now)
    return FleetScreen(
        page=page,
        counts=queries.fleet_counts(now),
        sites=queries.site_names(),
        now=now,
        cursor=poll_cursor(now),
        show_ping=queries.ping_service_reports(now),
        commands=commands.latest_by_device([device.id for device, _ in page.items]),
    )


def poll_fleet(
    view: DeviceFilter,
    since: datetime,
    shown: list[int],
    now: datetime,
    seen: str | None = None,
) -> FleetPoll | None:
    """The shown devices changed after `since` and fresh counters; None when nothing changed.

    `seen` is the tag of the counters on screen: when no shown row changed and
    the counters are still those, the poll has nothing to send either, however
    many devices off screen changed.
    """
    if not queries.anything_changed(since):
        return None
    # Ask about the rows on screen by id, so a site-wide outage that changes
    # thousands of devices cannot crowd them out.
    on_screen = queries.changed_among(shown, since)
    counts = queries.fleet_counts(now)
    if not on_screen and seen == counts_tag(counts):
        return None
    rows = queries.devices_with_flaps(on_screen, now)
    matching = set(queries.matching_device_ids(view, now, among=on_screen)) if on_screen else set()
    return FleetPoll(
        rows=rows,
        outside_view=set(on_screen) - matching,
        counts=counts,
        cursor=poll_cursor(now),
        commands=commands.latest_by_device(on_screen),
    )


@dataclass(frozen=True)
class Reconnected:
    """What the page redraws after a reconnect click: the row and the counters beside it."""

    device: Device
    flaps: int
    counts: dict[str, int]


def reconnect_device(uid: str, actor: str, now: datetime) -> Reconnected:
    """Ask one device to reconnect; returns it with its flap count and the fleet's counters."""
    device = reconnects.request_reconnect(uid, actor, now)
    return Reconnected(device, queries.flap_count(device.id, now), queries.fleet_counts(now))


@dataclass(frozen=True)
class CommandCell:
    """The grid's command cell of one device: its latest command, and why a request was refused."""

    uid: str
    command: DeviceCommand | None
    error: str | None = None


def command_from_grid(
    uid: str, kind: str, params: dict[str, Any], actor: str, now: datetime
) -> CommandCell:
    """Ask one device for a command from its grid row; a refusal comes back as the cell's note."""
    try:
        requested = commands.request_command(uid, kind, params, actor, now)
    except InvalidInput as refused:
        db.session.rollback()
        return command_cell(uid, refused.message)
    return CommandCell(uid, requested.command)


def command_cell(uid: str, error: str | None = None) -> CommandCell:
    """The grid's command cell of one device as it stands."""
    device = device_state.get_device(uid)
    return CommandCell(device.uid, commands.latest_by_device([device.id]).get(device.id), error)


def reconnect_matching(view: DeviceFilter, actor: str, now: datetime) -> BulkAction:
    """Ask every device matching the view (all pages) to reconnect, delays spread out.

    A small run is done before this returns; a large one is returned running,
    for a background job to do (jobs/bulk.py).
    """
    action = bulk.start_bulk_reconnect(view, actor, now)
    if bulk.runs_in_the_request(action):
        return bulk.run_bulk_action(action.id, now)
    return action


def command_matching(
    view: DeviceFilter, kind: str, params: dict[str, Any], actor: str, now: datetime
) -> BulkAction:
    """Send a command to every device matching the view (all pages), delays spread out.

    As `reconnect_matching`: a small run is done before this returns. InvalidInput
    for a bad kind or params, or a view with no filter (nobody asks the whole
    fleet to reboot by accident).
    """
    return bulk.request_bulk_command(view, kind, params, actor, now)


@dataclass(frozen=True)
class DeviceSummary:
    device: Device
    reconnect: rules.ReconnectState | None
    flaps: int
    flap: FlapSettings


@dataclass(frozen=True)
class DeviceScreen:
    summary: DeviceSummary
    thresholds: rules.Thresholds
    defaults: rules.Thresholds
    timeline: list[history.Segment]
    window_start: datetime
    span: str  # the zoom, a key of history.TIMELINE_SPANS
    telemetry: history.Series
    events: history.EventPage
    now: datetime
    commands: CommandPanel
    availability: bars.DeviceBars
    hours: HoursView


def device_summary(uid: str, now: datetime) -> DeviceSummary:
    """The device page's summary: status, reconnect state and flaps (its 5 s refresh)."""
    device = device_state.get_device(uid)
    return DeviceSummary(
        device=device,
        reconnect=rules.reconnect_state_at(
            now, device.reconnect_state, device.reconnect_expires_at
        ),
        flaps=queries.flap_count(device.id, now),
        flap=queries.flap_settings(),
    )


def device_screen(
    uid: str, now: datetime, events_page: int = 1, span: str = history.DEFAULT_SPAN
) -> DeviceScreen:
    """The device page: its summary, timeline and telemetry over `span`, one page of its events."""
    summary = device_summary(uid, now)
    device = summary.device
    span = span if span in history.TIMELINE_SPANS else history.DEFAULT_SPAN
    start = history.window_start(now, span)
    return DeviceScreen(
        summary=summary,
        thresholds=device_state.thresholds_of(device),
        defaults=device_state.fleet_defaults(),
        timeline=history.timeline_segments(
            history.status_changes(device.id, start), device.status, start, now, device.created_at
        ),
        window_start=start,
        span=span,
        telemetry=history.telemetry_series(device.id, start, now),
        events=history.list_events(history.EventFilter(uid=uid, page=events_page, per_page=20)),
        now=now,
        commands=command_panel(uid),
        availability=bars.device_bars(device.id, now),
        hours=hours.device_hours_view(device, now),
    )
