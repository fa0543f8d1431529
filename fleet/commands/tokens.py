"""`flask tokens ...`: service tokens for the admin APIs."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from fleet.commands.output import print_table, when
from fleet.errors import FleetError
from fleet.services import service_tokens
from fleet.timeutil import utcnow

tokens_cli = AppGroup("tokens", help="Create, revoke and list service tokens.")


@tokens_cli.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(service_tokens.SCOPES),
    help="What the token may do; repeat for several.",
)
def create_token_command(name: str, scopes: tuple[str, ...]) -> None:
    """Create a service token; it is printed alone on the last line, once."""
    try:
        token = service_tokens.create_token(name, scopes, utcnow())
    except FleetError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Service token {name} created with scopes {', '.join(scopes)}. Shown once:")
    click.echo(token)


@tokens_cli.command("revoke")
@click.argument("name")
def revoke_token_command(name: str) -> None:
    """Revoke a service token; requests carrying it get 401 from now on."""
    try:
        info = service_tokens.revoke_token(name, utcnow())
    except FleetError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Service token {info.name} revoked at {when(info.revoked_at)}.")


@tokens_cli.command("list")
def list_tokens_command() -> None:
    """List service tokens: name, scopes, created, last used, revoked."""
    rows = [
        (
            info.name,
            ",".join(info.scopes),
            when(info.created_at),
            when(info.last_used_at),
            when(info.revoked_at),
        )
        for info in service_tokens.list_tokens()
    ]
    print_table(
        ("NAME", "SCOPES", "CREATED", "LAST USED", "REVOKED"), rows, empty="No service tokens."
    )
