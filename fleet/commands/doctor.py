"""`flask doctor`: check an installation and say how to fix each problem found."""

from __future__ import annotations

import os
from collections.abc import Callable

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from fleet.config import DEFAULT_ENROLLMENT_KEY, DEFAULT_SECRET_KEY
from fleet.extensions import db
from fleet.health import (
    Check,
    check_cron,
    check_database,
    check_redis,
    check_sweep,
    redis_client,
)
from fleet.schema import migrations
from fleet.timeutil import utcnow

MARKS = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]"}


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check the database, migrations, Redis, sweeps, workers and settings; exit 1 on a problem."""
    checks = run_checks()
    for check in checks:
        click.echo(render(check))
    failures = sum(check.failed for check in checks)
    if failures:
        click.echo(f"{failures} problem(s) found.")
        raise SystemExit(1)
    click.echo("No problems found.")


def render(check: Check) -> str:
    """One finding, with its fix on the next line when it did not pass."""
    mark = MARKS["ok" if check.ok else "warn" if check.warning else "fail"]
    line = f"{mark} {check.name}: {check.detail}"
    if not check.ok and check.fix:
        line += f"\n       fix: {check.fix}"
    return line


def run_checks() -> list[Check]:
    """Every check, skipping those that need a service another check found down."""
    checks: list[Check] = []
    database = check_database()
    checks.append(database)
    if database.ok:
        migrations = check_migrations()
        checks.append(migrations)
        if migrations.ok:  # before that the sweep's records may not even have a table
            checks.append(check_sweep(utcnow()))
            checks.append(check_alert_channels())
    redis_check = check_redis()
    if redis_check is not None:
        checks.append(redis_check)
        if redis_check.ok:
            checks += background_checks()
    checks += [check_secrets(), check_rate_limit_storage()]
    return checks


def check_migrations() -> Check:
    """The database's Alembic revision is the newest one the code ships."""
    from alembic.runtime.migration import MigrationContext  # only this check needs Alembic
    from alembic.script import ScriptDirectory

    config = migrations(current_app._get_current_object()).migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        return Check("migrations", False, f"could not be read ({type(error).__name__})")
    fix = "run `flask db upgrade`"
    if not current:
        return Check("migrations", False, "the database is not migrated (no tables)", fix)
    if current != heads:
        detail = f"the database is at {', '.join(sorted(current))}, the code at {', '.join(heads)}"
        return Check("migrations", False, detail, fix)
    return Check("migrations", True, f"at head ({', '.join(sorted(heads))})")


def background_checks() -> list[Check]:
    """RQ workers have registered themselves in Redis, and the cron scheduler beats."""
    # Imported here: rq is only needed where Redis is used.
    from rq import Worker

    client = redis_client(current_app.config["REDIS_URL"])
    try:
        workers = _registered(
            "workers",
            lambda: Worker.all(connection=client),
            "RQ worker",
            "start `flask jobs worker` (one or more, e.g. a systemd unit per worker)",
        )
    finally:
        client.close()
    cron = check_cron(utcnow())
    return [workers] if cron is None else [workers, cron]


def _registered(name: str, find: Callable[[], list], what: str, fix: str) -> Check:
    from redis import RedisError

    try:
        found = find()
    except RedisError as error:
        return Check(name, False, f"could not be listed ({type(error).__name__})", fix)
    if not found:
        return Check(name, False, f"no {what} is alive", fix)
    return Check(name, True, f"{len(found)} {what}(s) alive")


def check_alert_channels() -> Check:
    """No notification channel has failed its last three deliveries in a row."""
    from fleet.services.alerts.channels import FAILING_AFTER, failing_channels

    failing = failing_channels()
    if not failing:
        return Check("alert_channels", True, "no channel is failing")
    named = ", ".join(
        f"{channel.name} ({channel.last_error or 'no error recorded'})" for channel in failing
    )
    return Check(
        "alert_channels",
        False,
        f"{len(failing)} channel(s) failed their last {FAILING_AFTER}+ deliveries: {named}",
        "check each URL with `flask channels test NAME`; replace a wrong one with "
        "`flask channels remove NAME` and `flask channels add NAME URL`",
    )


def check_secrets() -> Check:
    """SECRET_KEY and ENROLLMENT_KEY are not the shipped defaults (fatal in production)."""
    config = current_app.config
    defaults = [
        name
        for name, default in (
            ("SECRET_KEY", DEFAULT_SECRET_KEY),
            ("ENROLLMENT_KEY", DEFAULT_ENROLLMENT_KEY),
        )
        if config[name] == default
    ]
    if not defaults:
        return Check("secrets", True, "SECRET_KEY and ENROLLMENT_KEY are set")
    production = config["PULSEBOARD_ENV"] == "production"
    return Check(
        "secrets",
        False,
        f"{' and '.join(defaults)} still the shipped default"
        + ("" if production else " (fine to try Pulseboard out, not for real devices)"),
        'set each to a long random value, e.g. `python -c "import secrets; '
        'print(secrets.token_urlsafe(32))"`',
        warning=not production,
    )


def check_rate_limit_storage() -> Check:
    """Rate limits are shared (Redis) whenever more than one web process serves requests."""
    storage = current_app.config["RATELIMIT_STORAGE_URI"]
    if current_app.config["REDIS_URL"] and storage.startswith(("redis", "rediss")):
        return Check("rate_limits", True, "stored in Redis, shared by every process")
    processes = _web_processes()
    fix = "set REDIS_URL so that every web process counts against the same limits"
    if processes > 1:
        return Check(
            "rate_limits",
            False,
            f"kept in each process's memory, but WEB_CONCURRENCY={processes}: "
            f"a device gets {processes} times its limit",
            fix,
        )
    production = current_app.config["PULSEBOARD_ENV"] == "production"
    return Check(
        "rate_limits",
        not production,
        "kept in this process's memory (right for one web process)",
        fix,
        warning=True,
    )


def _web_processes() -> int:
    # WEB_CONCURRENCY is gunicorn's own variable (gunicorn.conf.py reads it too).
    try:
        return int(os.environ.get("WEB_CONCURRENCY", "1"))
    except ValueError:
        return 1
