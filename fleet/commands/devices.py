"""`flask devices ...`: enrol devices and run status sweeps."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from fleet.errors import FleetError
from fleet.services import devices
from fleet.timeutil import utcnow

devices_cli = AppGroup("devices", help="Enrol devices and run status sweeps.")


@devices_cli.command("add")
@click.argument("uid")
@click.option("--name", default=None, help="Display name.")
@click.option("--site", default=None, help="Site the device stands at.")
def add_device_command(uid: str, name: str | None, site: str | None) -> None:
    """Create a device; its token is printed alone on the last line."""
    try:
        token = devices.add_device(uid, utcnow(), name=name, site=site)
    except FleetError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Device {uid} created. Its token (shown once):")
    click.echo(token)
