"""`flask channels ...` and `flask alerts ...`: where notifications go, and when."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from fleet.errors import FleetError
from fleet.services.alerts import channels, ruleset, service
from fleet.services.alerts.ruleset import RuleSpec
from fleet.timeutil import utcnow

channels_cli = AppGroup("channels", help="Notification channels (Apprise URLs or webhooks).")
alerts_cli = AppGroup("alerts", help="Alert rules, and the delivery worker's round.")

ACTOR = "cli"


def _fail(error: FleetError) -> click.ClickException:
    return click.ClickException(error.message)


@channels_cli.command("add")
@click.argument("name")
@click.argument("url")
def add_channel_command(name: str, url: str) -> None:
    """Add a channel; its URL is stored encrypted and shown masked. Prints NAME last."""
    try:
        added = channels.add_channel(name, url, ACTOR, utcnow())
    except FleetError as error:
        raise _fail(error) from None
    click.echo(f"Channel added: {added.masked_url}")
    if added.generated_secret:
        click.echo(f"Webhook signing secret (shown once): {added.generated_secret}")
    click.echo(added.name)


@channels_cli.command("list")
def list_channels_command() -> None:
    """List channels: name, kind, masked URL, delivery health."""
    rows = channels.list_channels()
    if not rows:
        click.echo("No channels.")
        return
    for row in rows:
        health = "FAILING" if row.failing else "ok"
        error = f" (last error: {row.last_error})" if row.failing and row.last_error else ""
        click.echo(f"{row.name}  {row.kind}  {row.masked_url}  {health}{error}")


@channels_cli.command("test")
@click.argument("name")
def test_channel_command(name: str) -> None:
    """Send a test message now; exit 0 once delivered, non-zero with the error otherwise."""
    try:
        error = service.send_test(name, utcnow())
    except FleetError as failure:
        raise _fail(failure) from None
    if error is not None:
        raise click.ClickException(f"test message to {name} failed: {error}")
    click.echo(f"Test message delivered to {name}.")


@channels_cli.command("remove")
@click.argument("name")
def remove_channel_command(name: str) -> None:
    """Remove a channel (and its place in every rule)."""
    try:
        channels.remove_channel(name, ACTOR, utcnow())
    except FleetError as error:
        raise _fail(error) from None
    click.echo(f"Channel {name} removed.")


@channels_cli.command("rotate-key")
def rotate_key_command() -> None:
    """Re-encrypt every channel URL with the current SECRET_KEY (see docs/alerts.md)."""
    try:
        count = channels.rotate_keys()
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{count} channel(s) re-encrypted with the current key.")


@alerts_cli.command("add-rule")
@click.argument("name")
@click.option(
    "--when",
    "kind",
    required=True,
    type=click.Choice(["disconnected", "not-connected", "site-outage", "flapping"]),
)
@click.option(
    "--for",
    "for_seconds",
    type=click.IntRange(0),
    default=0,
    help="Seconds the condition must last.",
)
@click.option("--site", help="Only this site.")
@click.option(
    "--filter", "scope_filter", help="Only devices matching a fleet filter, e.g. 'q=lobby'."
)
@click.option("--percent", type=int, help="Site outage: this share of the site not connected.")
@click.option(
    "--devices", "min_devices", type=int, help="Site outage: this many devices not connected."
)
@click.option(
    "--channel", "channel_names", multiple=True, required=True, help="Repeat for several."
)
@click.option("--remind-hours", type=float, help="Remind every R hours while it lasts.")
def add_rule_command(
    name: str,
    kind: str,
    for_seconds: int,
    site: str | None,
    scope_filter: str | None,
    percent: int | None,
    min_devices: int | None,
    channel_names: tuple[str, ...],
    remind_hours: float | None,
) -> None:
    """Add an alert rule routed to one or more channels."""
    spec = RuleSpec(
        name=name,
        kind=kind,
        channels=channel_names,
        for_seconds=for_seconds,
        site=site,
        scope_filter=scope_filter,
        percent=percent,
        min_devices=min_devices,
        remind_hours=remind_hours,
    )
    try:
        rule = ruleset.add_rule(spec, ACTOR, utcnow())
    except FleetError as error:
        raise _fail(error) from None
    click.echo(f"Rule {rule.name}: {ruleset.describe(rule)}")


@alerts_cli.command("list")
def list_rules_command() -> None:
    """List the alert rules."""
    rules = ruleset.load_rules()
    if not rules:
        click.echo("No alert rules.")
    for rule in rules:
        click.echo(f"{rule.name}  {ruleset.describe(rule)}")


@alerts_cli.command("remove")
@click.argument("name")
def remove_rule_command(name: str) -> None:
    """Remove a rule; its open incidents end without a message."""
    try:
        ruleset.remove_rule(name, ACTOR, utcnow())
    except FleetError as error:
        raise _fail(error) from None
    click.echo(f"Rule {name} removed.")


@alerts_cli.command("deliver")
def deliver_command() -> None:
    """One round of the delivery worker now: due incidents, reminders, queued notifications."""
    click.echo(service.run_alerts(utcnow()))
