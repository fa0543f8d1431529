"""`flask sites schedule ...` and `flask maintenance ...`: operating hours, maintenance windows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from flask.cli import AppGroup

from fleet.commands.output import print_table, when
from fleet.errors import FleetError
from fleet.schedules import ScheduleError, schedule_from_text
from fleet.services import hours
from fleet.services.schedule_tick import describe_target
from fleet.timeutil import utcnow

sites_cli = AppGroup("sites", help="Sites' operating hours.")
maintenance_cli = AppGroup("maintenance", help="Maintenance windows.")

ACTOR = "cli"


def _fail(error: FleetError | ScheduleError) -> click.ClickException:
    return click.ClickException(error.message if isinstance(error, FleetError) else str(error))


def _schedule_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--timezone", help="IANA time zone, e.g. Europe/Berlin (default UTC)"),
            click.option(
                "--hours",
                "hours_",
                multiple=True,
                help='e.g. "mon-fri 08:00-20:00" or "sat 10:00-12:00,13:00-16:00"; repeatable',
            ),
            click.option("--always", is_flag=True, help="Open all day, every day (the default)"),
            click.option("--holidays", "holidays_", help="Closed on public holidays, e.g. DE-BE"),
            click.option(
                "--closed",
                multiple=True,
                help="A closure FROM[:TO[:NOTE]], e.g. 2026-12-24:2026-12-26:Christmas",
            ),
            click.option("--clear", is_flag=True, help="Remove the hours"),
        ]
    ):
        command = option(command)
    return command


def _schedule_data(
    timezone: str | None, hours_: tuple, always: bool, holidays_: str | None, closed: tuple
) -> dict[str, Any]:
    try:
        return schedule_from_text(timezone, [] if always else list(hours_), holidays_, list(closed))
    except ScheduleError as error:
        raise _fail(error) from None


def _show(view: hours.HoursView) -> None:
    if view.schedule is None:
        click.echo("No operating hours: always open.")
        return
    click.echo(f"Time zone: {view.schedule.timezone}")
    for line in view.schedule.describe():
        click.echo(f"  {line}")
    if view.schedule.holidays:
        click.echo(f"Closed on public holidays: {view.schedule.holidays}")
    for closure in view.schedule.closures:
        click.echo(f"Closed {closure.first} to {closure.last} {closure.note}".rstrip())
    state = "open" if view.open_now else "closed"
    change = view.next_change
    after = "" if change is None else f"; {'opens' if change.opens else 'closes'} {when(change.at)}"
    click.echo(f"Now: {state}{after}")


def _change(key: str, options: dict[str, Any], set_hours: Any, clear_hours: Any) -> None:
    """Clear, set or (with no option) leave the hours of `key`; a refusal is the CLI's error."""
    now = utcnow()
    clear = options.pop("clear")
    try:
        if clear:
            clear_hours(key, ACTOR, now)
        elif any(options.values()):
            set_hours(key, _schedule_data(**options), ACTOR, now)
    except FleetError as error:
        raise _fail(error) from None


@sites_cli.command("schedule")
@click.argument("site")
@_schedule_options
def schedule_command(site: str, **options: Any) -> None:
    """Set a site's operating hours; with no option, show them."""
    _change(site, options, hours.set_site_hours, hours.clear_site_hours)
    _show(hours.site_hours_view(site, utcnow()))


@sites_cli.command("device-schedule")
@click.argument("uid")
@_schedule_options
def device_schedule_command(uid: str, **options: Any) -> None:
    """Give one device hours of its own (overriding its site's); with no option, show them."""
    _change(uid, options, hours.set_device_hours, hours.clear_device_hours)
    try:
        device = hours.get_device(uid)
    except FleetError as error:
        raise _fail(error) from None
    _show(hours.device_hours_view(device, utcnow()))


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date and time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@maintenance_cli.command("add")
@click.option("--site", help="Every device of this site")
@click.option("--uid", "uids", multiple=True, help="A device; repeatable")
@click.option("--filter", "fleet_filter", help="A fleet grid URL query, e.g. 'site=Mall&q=lobby'")
@click.option("--starts", help="ISO time (UTC unless it says otherwise); default now")
@click.option("--ends", help="ISO time; required for a one-off window")
@click.option("--cron", help="Recurring: a cron expression, e.g. '0 2 * * sun'")
@click.option("--rrule", help="Recurring: an RRULE, e.g. 'FREQ=WEEKLY;BYDAY=SU;BYHOUR=2'")
@click.option("--minutes", type=int, help="How long each recurrence lasts")
@click.option("--timezone", help="Where cron and rrule times are read (default: the site's, UTC)")
@click.option("--note", help="Why, shown to staff")
def add_window_command(
    site, uids, fleet_filter, starts, ends, cron, rrule, minutes, timezone, note
):
    """Create a maintenance window; prints its id on the last line."""
    spec = hours.WindowSpec(
        site=site,
        uids=list(uids) or None,
        fleet_filter=fleet_filter,
        starts_at=_moment(starts),
        ends_at=_moment(ends),
        cron=cron,
        rrule=rrule,
        duration_minutes=minutes,
        timezone=timezone,
        note=note,
    )
    try:
        window = hours.create_window(spec, ACTOR, utcnow())
    except FleetError as error:
        raise _fail(error) from None
    click.echo(f"Window for {describe_target(window)}: {hours.describe_when(window)}")
    click.echo(window.id)


@maintenance_cli.command("list")
def list_windows_command() -> None:
    """List maintenance windows: those not over yet first."""
    now = utcnow()
    rows = [
        (
            str(w.id),
            hours.window_state(w, now),
            describe_target(w),
            hours.describe_when(w),
            w.note or "",
            w.created_by or "",
        )
        for w in hours.list_windows()
    ]
    print_table(("id", "state", "for", "when", "note", "by"), rows, "No maintenance windows.")


@maintenance_cli.command("end")
@click.argument("window_id", type=int)
def end_window_command(window_id: int) -> None:
    """End a window early (or cancel one not begun)."""
    try:
        window = hours.end_window(window_id, ACTOR, utcnow())
    except FleetError as error:
        raise _fail(error) from None
    click.echo(f"Window {window.id} ended.")
