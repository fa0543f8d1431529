"""`flask devices ...`: enrol devices and run status sweeps."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from fleet.errors import FleetError
from fleet.rules import Status
from fleet.services import bulk, commands, enrolment
from fleet.services.queries import DeviceFilter
from fleet.services.sweep import SweepReport, enforce_timeouts, run_sweep
from fleet.timeutil import utcnow

devices_cli = AppGroup("devices", help="Enrol devices and run status sweeps.")


@devices_cli.command("add")
@click.argument("uid")
@click.option("--name", default=None, help="Display name.")
@click.option("--site", default=None, help="Site the device stands at.")
def add_device_command(uid: str, name: str | None, site: str | None) -> None:
    """Create a device; its token is printed alone on the last line."""
    try:
        token = enrolment.add_device(uid, utcnow(), name=name, site=site)
    except FleetError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Device {uid} created. Its token (shown once):")
    click.echo(token)


@devices_cli.command("allow-re-enrolment")
@click.argument("uid")
@click.option("--minutes", default=60, show_default=True, help="How long the leave lasts.")
@click.option("--by", "actor", default="cli", show_default=True, help="Who gives the leave.")
def allow_re_enrolment_command(uid: str, minutes: int, actor: str) -> None:
    """Let a device that lost its token enrol again once, without it."""
    try:
        until = enrolment.allow_re_enrolment(uid, actor, utcnow(), minutes)
    except FleetError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{uid} may enrol again with the fleet key until {until:%Y-%m-%d %H:%M} UTC.")


@devices_cli.command("command")
@click.argument("uid")
@click.argument("kind")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="e.g. delay_seconds=30."
)
@click.option("--by", "actor", default="cli", show_default=True, help="Who asks.")
def command_command(uid: str, kind: str, params: tuple[str, ...], actor: str) -> None:
    """Ask a device for a command (reconnect, restart_app, reboot, refresh_content, screenshot)."""
    try:
        requested = commands.request_command(uid, kind, parse_params(params), actor, utcnow())
    except FleetError as error:
        raise click.ClickException(error.message) from None
    command = requested.command
    if requested.replaced_id is not None:
        click.echo(f"It replaces pending command {requested.replaced_id}.")
    click.echo(f"Command {command.id} ({command.kind}) for {uid} is {command.state}.")


@devices_cli.command("command-all")
@click.argument("kind")
@click.option(
    "--status", type=click.Choice([s.value for s in Status]), help="Only devices in this status."
)
@click.option("--site", default=None, help="Only devices of this site.")
@click.option("--flapping/--steady", default=None, help="Only flapping (or steady) devices.")
@click.option("--search", "q", default=None, help="Only devices whose uid, name or site match.")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="e.g. delay_seconds=30."
)
@click.option("--by", "actor", default="cli", show_default=True, help="Who asks.")
def command_all_command(
    kind: str,
    status: str | None,
    site: str | None,
    flapping: bool | None,
    q: str | None,
    params: tuple[str, ...],
    actor: str,
) -> None:
    """Send a command to every device a filter matches (one filter at least), delays spread out."""
    view = DeviceFilter(status=status, site=site, flapping=flapping, q=q)
    now = utcnow()
    try:
        action = bulk.start_bulk_command(view, kind, parse_params(params), actor, now)
        # Here, not in a background job: the command returns when every device is asked.
        action = bulk.run_bulk_action(action.id, now)
    except FleetError as error:
        raise click.ClickException(error.message) from None
    spread = current_app.config["BULK_RECONNECT_SPREAD_SECONDS"]
    click.echo(
        f"Bulk action {action.id}: asked {action.done} device(s) for {kind}, "
        f"delays spread over {spread} s."
    )


def parse_params(pairs: tuple[str, ...]) -> dict[str, int]:
    """`key=value` pairs as a dict; every parameter a command takes is a whole number."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value.strip().lstrip("-").isdigit():
            raise click.BadParameter(f"{pair!r} is not KEY=WHOLE_NUMBER", param_hint="--param")
        params[key.strip()] = int(value)
    return params


@devices_cli.command("monitor-status")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--verbose", is_flag=True, help="List every device that changes.")
def monitor_status_command(dry_run: bool, verbose: bool) -> None:
    """Run one timeout sweep now and report what changed (or would change)."""
    now = utcnow()
    try:
        report = enforce_timeouts(now, dry_run=True) if dry_run else run_sweep(now, runner="cli")
    except SQLAlchemyError as error:
        raise click.ClickException(
            f"cannot reach the database: {error.__class__.__name__}"
        ) from None
    if report.skipped:
        raise click.ClickException(f"sweep skipped: {report.skip_reason}; try again shortly")
    click.echo(format_report(report, verbose))


def format_report(report: SweepReport, verbose: bool) -> str:
    """The sweep report as a readable table."""
    heading = "Dry run: nothing written." if report.dry_run else "Sweep done."
    lines = [f"{heading} At {report.started_at:%Y-%m-%d %H:%M:%S} UTC"]
    for kind, count in sorted(report.counts().items()):
        lines.append(f"  {kind:<40} {count:>7}")
    lines.append(f"  {'transitions':<40} {report.transitions:>7}")
    lines.append(f"  {'reconnect requests expired':<40} {report.reconnects_expired:>7}")
    lines.append(f"  {'duration':<40} {report.duration_ms:>7.1f} ms")
    if verbose and report.changes:
        lines.append("")
        lines.append(f"  {'UID':<32} {'FROM':<20} {'TO':<20} {'HEARTBEAT AGE':>13}")
        for change in report.changes:
            age = (
                "never"
                if change.heartbeat_age_seconds is None
                else f"{change.heartbeat_age_seconds:.0f} s"
            )
            lines.append(
                f"  {change.uid:<32} {change.from_status:<20} {change.to_status:<20} {age:>13}"
            )
    return "\n".join(lines)
