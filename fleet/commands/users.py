"""`flask users ...`: dashboard accounts."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from fleet.errors import FleetError
from fleet.services import users
from fleet.timeutil import utcnow

users_cli = AppGroup("users", help="Manage dashboard accounts.")


@users_cli.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice([role.value for role in users.Role]),
    default=users.Role.VIEWER.value,
    show_default=True,
    help="viewer looks; operator also reconnects; admin also changes settings.",
)
@click.option("--password", default=None, help="Prompted for (hidden) when not given.")
def create_user_command(email: str, role: str, password: str | None) -> None:
    """Create a dashboard account."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = users.create_user(email, password, role, utcnow())
    except FleetError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"User {user.email} created with role {user.role}.")
