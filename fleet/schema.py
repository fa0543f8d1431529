"""The schema's migrations (Alembic, through Flask-Migrate), set up the first time they are needed.

Flask-Migrate imports Alembic, about a tenth of a `flask` command's start-up,
and only `flask db`, the doctor's migration check and the fixtures that build
a database need it: every other command, worker and web process starts
without it.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, current_app

from fleet import ROOT
from fleet.extensions import db

MIGRATIONS_DIR = ROOT / "migrations"


def migrations(app: Flask) -> Any:
    """Flask-Migrate's config for `app` (its `.migrate.get_config()` is Alembic's)."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
    return app.extensions["migrate"]


def upgrade() -> None:
    """Migrate the current app's database to the newest revision (`flask db upgrade`)."""
    from flask_migrate import upgrade as upgrade_to_head

    migrations(current_app._get_current_object())
    upgrade_to_head()


class MigrationCommands(click.Group):
    """`flask db ...`: Flask-Migrate's own group, loaded when it is asked for.

    Click's way of loading commands lazily: asked to parse its arguments, this
    group hands over to Flask-Migrate's `db` group (its options, subcommands
    and help) once the app, which the `flask` command has loaded and put in
    context, knows its migrations.
    """

    def _loaded(self) -> click.Group:
        from flask_migrate.cli import db as flask_migrate_commands

        migrations(current_app._get_current_object())
        return flask_migrate_commands

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self._loaded().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self._loaded().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._loaded().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._loaded().get_command(ctx, name)


db_cli = MigrationCommands("db", help="Perform database migrations (Flask-Migrate).")
