"""`flask reports ...`: rebuild the availability rollups from the events, prune old history."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from fleet.services.availability import rebuild
from fleet.timeutil import utcnow

reports_cli = AppGroup("reports", help="Availability rollups and history retention.")


@reports_cli.command("rebuild")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First UTC day to recompute (default: everything the events cover).",
)
def rebuild_command(since: datetime | None) -> None:
    """Recompute the rollups, outages and tallies from the raw events."""
    report = rebuild.rebuild(since.date() if since else None)
    click.echo(f"Rebuilt availability of {report.devices} devices from {report.events} events.")


@reports_cli.command("prune")
def prune_command() -> None:
    """Move idle tallies on, and delete events, rollups and outages past their retention,
    now (a job does it hourly)."""
    report = rebuild.prune_history(utcnow())
    click.echo(
        f"Pruned {report.events} events, {report.days} day and {report.hours} hour rollups, "
        f"{report.outages} outages; moved {report.tallies_moved} idle tallies on."
    )


@reports_cli.command("demo-history")
@click.option("--days", type=click.IntRange(1, 90), default=7, show_default=True)
def demo_history_command(days: int) -> None:
    """Give the devices enrolled in the last day a made-up past (the demo fleet's bars)."""
    from fleet.services.availability import demo_history

    count = demo_history.backfill(days, utcnow())
    click.echo(f"Gave {count} devices {days} days of demo history.")
