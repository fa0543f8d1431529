"""`flask users ...`: dashboard accounts."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from flask.cli import AppGroup

from fleet.accounts import Role
from fleet.commands.output import print_table, when
from fleet.errors import FleetError
from fleet.services import users
from fleet.timeutil import utcnow

users_cli = AppGroup("users", help="Manage dashboard accounts.")

ROLE_CHOICE = click.Choice([role.value for role in Role])


def _domain_errors_as_click(command: Callable[..., None]) -> Callable[..., None]:
    """A domain error (unknown user, short password) ends the command with its message."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except FleetError as error:
            raise click.ClickException(error.message) from None

    return run


@users_cli.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=ROLE_CHOICE,
    default=Role.VIEWER.value,
    show_default=True,
    help="viewer looks; operator also reconnects; admin also changes settings.",
)
@click.option("--password", default=None, help="Prompted for (hidden) when not given.")
@_domain_errors_as_click
def create_user_command(email: str, role: str, password: str | None) -> None:
    """Create a dashboard account."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = users.create_user(email, password, role, utcnow())
    click.echo(f"User {user.email} created with role {user.role}.")


@users_cli.command("list")
def list_users_command() -> None:
    """List accounts: email, role, whether active, created, last login."""
    rows = [
        (
            user.email,
            user.role,
            "yes" if user.active else "no",
            when(user.created_at),
            when(user.last_login_at),
        )
        for user in users.list_users()
    ]
    print_table(("EMAIL", "ROLE", "ACTIVE", "CREATED", "LAST LOGIN"), rows, empty="No users.")


@users_cli.command("deactivate")
@click.argument("email")
@_domain_errors_as_click
def deactivate_command(email: str) -> None:
    """Refuse the account's logins and end every session it has."""
    user = users.deactivate(email)
    click.echo(f"User {user.email} deactivated; its sessions have ended.")


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLE_CHOICE)
@_domain_errors_as_click
def set_role_command(email: str, role: str) -> None:
    """Change the account's role; it applies from the account's next request."""
    user = users.set_role(email, role)
    click.echo(f"User {user.email} now has role {user.role}.")


@users_cli.command("reset-password")
@click.argument("email")
@click.option(
    "--password",
    default=None,
    help="The new password; without it one is generated and printed alone on the last line.",
)
@_domain_errors_as_click
def reset_password_command(email: str, password: str | None) -> None:
    """Set a new password and end every session of the account."""
    new_password = secrets.token_urlsafe(18) if password is None else password
    user = users.set_password(email, new_password)
    if password is not None:
        click.echo(f"Password of {user.email} changed; its sessions have ended.")
        return
    click.echo(f"Password of {user.email} reset; its sessions have ended. Shown once:")
    click.echo(new_password)
