"""The schema's migrations (Alembic, through Flask-Migrate), set up the first time they are needed.

Flask-Migrate imports Alembic, about a tenth of a `flask` command's start-up,
and only `flask db`, the doctor's migration check and the fixtures that build
a database need it: every other command, worker and web process starts
without it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from fleet import ROOT
from fleet.commands.lazy import LazyCommand
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


def _prepare_migrations() -> None:
    migrations(current_app._get_current_object())


# `flask db ...` is Flask-Migrate's own group, set up for the app that the
# `flask` command has loaded and put in context, once it is asked for.
db_cli = LazyCommand(
    "db",
    "flask_migrate.cli:db",
    help="Perform database migrations (Flask-Migrate).",
    prepare=_prepare_migrations,
)
