"""Checks of an installation, shared by `/readyz` and `flask doctor`.

Each check answers a `Check`: whether it passed, what was found and, when it
failed, how to fix it. A warning is reported but does not make the whole fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import Flask, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from fleet.extensions import db
from fleet.timeutil import utcnow

if TYPE_CHECKING:
    import redis

STARTED_AT_KEY = "pulseboard.started_at"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    warning: bool = False

    @property
    def failed(self) -> bool:
        """A failure that makes the installation not healthy (warnings do not)."""
        return not self.ok and not self.warning


def redis_client(url: str) -> redis.Redis:
    """A Redis client that gives up within a second, for checks that must answer fast."""
    import redis  # only an installation with REDIS_URL needs it

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def check_database() -> Check:
    """The database answers a trivial query."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except SQLAlchemyError as error:
        db.session.rollback()
        return Check(
            "database",
            False,
            f"unreachable ({type(error.__cause__ or error).__name__})",
            "check DATABASE_URL and that the database server is running and accepts connections",
        )
    return Check("database", True, "reachable")


def check_redis() -> Check | None:
    """Redis answers PING, when REDIS_URL is configured; None otherwise."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return None
    from redis import RedisError

    client = redis_client(url)
    try:
        client.ping()
    except RedisError as error:
        return Check(
            "redis",
            False,
            f"unreachable ({type(error).__name__})",
            "check REDIS_URL and that redis-server is running",
        )
    finally:
        client.close()
    return Check("redis", True, "reachable")


def check_sweep(now: datetime, grace_from: datetime | None = None) -> Check:
    """The newest sweep started within two sweep intervals.

    `grace_from` (the process's start) excuses a missing or old sweep until two
    intervals have passed since then, so a fresh install is ready at once.
    """
    interval = current_app.config["SWEEP_INTERVAL_SECONDS"]
    limit = timedelta(seconds=2 * interval)
    fix = (
        "start the sweep: with REDIS_URL, `flask jobs worker` and `flask jobs cron`; "
        "without it, the embedded sweeper (EMBEDDED_SWEEPER=1); "
        "or run `flask devices monitor-status` by hand"
    )
    try:
        # Here, not at the top: the sweep brings the models and the status rules, and
        # every process imports this module at start-up (`mark_started`).
        from fleet.services.sweep import last_sweep

        run = last_sweep()
    except SQLAlchemyError:
        db.session.rollback()
        return Check("sweep", False, "unknown: the sweep records could not be read", fix)
    last = None if run is None else run.started_at
    if last is not None and now - last <= limit:
        return Check("sweep", True, f"last sweep {_ago(now, last)}")
    if grace_from is not None and now - grace_from <= limit:
        return Check("sweep", True, "waiting for the first sweep after start-up")
    found = "no sweep has ever run" if last is None else f"last sweep {_ago(now, last)}"
    return Check("sweep", False, f"{found}; expected one every {interval} s", fix)


CRON_FIX = "start `flask jobs cron` (exactly one per installation)"


def check_cron(now: datetime, grace_from: datetime | None = None) -> Check | None:
    """An RQ cron scheduler sent a heartbeat lately, when RQ runs the sweep; None otherwise.

    The scheduler beats at least once a sweep interval (and once a minute), so
    one silent for two of those, plus slack, is named dead; `grace_from` excuses
    a missing scheduler for as long after start-up, as `check_sweep` does.
    """
    config = current_app.config
    if not config["REDIS_URL"] or config["EMBEDDED_SWEEPER"]:
        return None
    from rq.cron import CronScheduler  # only needed where Redis is used

    client = redis_client(config["REDIS_URL"])
    try:
        beats = [s.last_heartbeat for s in CronScheduler.all(connection=client)]
    except redis.RedisError as error:
        return Check("cron", False, f"could not be listed ({type(error).__name__})", CRON_FIX)
    finally:
        client.close()
    limit = timedelta(seconds=2 * min(config["SWEEP_INTERVAL_SECONDS"], 60) + 5)
    alive = [beat for beat in beats if beat is not None and now - beat <= limit]
    if alive:
        detail = f"{len(alive)} RQ cron scheduler(s) alive, last heartbeat {_ago(now, max(alive))}"
        return Check("cron", True, detail)
    if grace_from is not None and now - grace_from <= limit:
        return Check("cron", True, "waiting for the RQ cron scheduler after start-up")
    seen = [beat for beat in beats if beat is not None]
    found = (
        f"the RQ cron scheduler is dead: last heartbeat {_ago(now, max(seen))}"
        if seen
        else "no RQ cron scheduler is alive"
    )
    return Check("cron", False, f"{found}; no sweep gets enqueued", CRON_FIX)


def _ago(now: datetime, then: datetime) -> str:
    return f"{max(0, round((now - then).total_seconds()))} s ago"


def readiness(now: datetime) -> list[Check]:
    """The checks `/readyz` answers: database, Redis and the cron scheduler when configured,
    sweep recency."""
    started_at = current_app.extensions.get(STARTED_AT_KEY)
    redis_check = check_redis()
    checks = [check_database(), redis_check]
    if redis_check is not None and redis_check.ok:
        checks.append(check_cron(now, grace_from=started_at))
    checks.append(check_sweep(now, grace_from=started_at))
    return [check for check in checks if check is not None]


def mark_started(app: Flask) -> None:
    """Remember when this process built its app, for the sweep check's start-up grace."""
    app.extensions[STARTED_AT_KEY] = utcnow()
