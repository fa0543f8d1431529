"""Shared set-up for the benchmarks: a database with a seeded fleet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import Flask
from sqlalchemy import insert, text

from fleet import create_app, rules
from fleet.extensions import db
from fleet.models import Device
from fleet.schema import upgrade
from fleet.services.device_state import fleet_defaults
from fleet.timeutil import utcnow
from fleet.tokens import hash_token
from tests import servers

SITES = [f"Site {n:03d}" for n in range(200)]
BATCH = 10_000


def bench_token(n: int) -> str:
    """The known token of seeded device n, so load generators can send heartbeats."""
    return f"pbd_bench_{n:06d}"


@contextmanager
def postgres_database(url: str | None, name: str) -> Iterator[str]:
    """`url` as given, or a database on a throwaway PostgreSQL that is stopped afterwards."""
    if url:
        yield url
        return
    server = servers.start_postgres()
    try:
        yield server.create_database(name)
    finally:
        server.stop()


def migrated_app(url: str) -> Flask:
    app = create_app({"EMBEDDED_SWEEPER": False}, env={"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade()
    return app


def seed(count: int) -> None:
    """Insert `count` connected devices that beat a few seconds ago (in an app context)."""
    now = utcnow()
    thresholds = fleet_defaults()
    for start in range(0, count, BATCH):
        rows = [
            _device_row(n, now - timedelta(seconds=n % 20), thresholds)
            for n in range(start, min(count, start + BATCH))
        ]
        db.session.execute(insert(Device.__table__), rows)
        db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE device"))
        db.session.commit()


def _device_row(n: int, beat, thresholds) -> dict:
    deadlines = rules.deadlines_for(beat, thresholds)
    return {
        "uid": f"dev-{n:06d}",
        "name": f"Screen {n}",
        "site": SITES[n % len(SITES)],
        "token_hash": hash_token(bench_token(n)),
        "status": "connected",
        "status_reason": "seeded",
        "status_source": "device",
        "status_changed_at": beat,
        "revision": 0,
        "last_heartbeat_at": beat,
        "offline_due_at": deadlines.offline_at,
        "disconnect_due_at": deadlines.disconnect_at,
        "changed_at": beat,
        "created_at": beat,
        # In steady state a device's telemetry was sampled within the last few minutes.
        "telemetry_sampled_at": beat,
    }
