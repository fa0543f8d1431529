"""Events page benchmark: server time of the page, its filters and its poll at 1M events.

    .venv/bin/python -m bench.events [--events 1000000] [--devices 10000] [--runs 10] [--explain]

Starts a throwaway PostgreSQL (or uses the empty database in DATABASE_URL),
seeds devices across 200 sites, a million device events over 30 days and
10,000 alerts log entries with SQL's generate_series, logs in through the
Flask test client and times each view server-side. With --explain it prints
PostgreSQL's plan (EXPLAIN ANALYZE) of every statement a view runs, to show
which index serves it. Target: every view under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import event, text

from bench.seeding import postgres_database
from fleet import create_app
from fleet.extensions import db
from fleet.schema import upgrade
from fleet.services import event_log, users
from fleet.timeutil import utcnow

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

SEED_DEVICES = """
INSERT INTO device (uid, name, site, token_hash, status, status_reason, status_source,
                    status_changed_at, revision, last_heartbeat_at, changed_at, created_at)
SELECT 'Kiosk-' || lpad(n::text, 5, '0'), 'Screen ' || n, 'Site ' || lpad((n % 200)::text, 3, '0'),
       md5(n::text) || md5((n + 1)::text), 'connected', 'seeded', 'system',
       now(), 0, now(), now(), now() - interval '31 days'
FROM generate_series(1, :devices) AS n
"""
# Reasons as the sweep and heartbeats word them; one in a thousand is a rare one to search for.
SEED_EVENTS = """
INSERT INTO device_event (device_id, kind, from_status, to_status, reason, source, created_at)
SELECT 1 + (n::bigint * 7919) % :devices, 'status', 'connected', 'temporarily_offline',
       CASE WHEN n % 1000 = 0 THEN 'watchdog tripped after a firmware update'
            ELSE 'no heartbeat for over 60 s' END,
       'system', now() - (n * interval '1 second') * (2592000.0 / :events)
FROM generate_series(1, :events) AS n
"""
SEED_LOG = """
INSERT INTO alert_log (kind, actor, message, created_at)
SELECT CASE WHEN n % 2 = 0 THEN 'rule_added' ELSE 'channel_added' END, 'admin@example.com',
       'rule r' || n || ' added', now() - n * interval '4 minutes'
FROM generate_series(1, 10000) AS n
"""

VIEWS = [
    ("first page", "/events"),
    ("page 20", "/events?page=20"),
    ("device, part of a uid (1 device)", "/events?device=kiosk-00042"),
    ("device, part of a uid (100 devices)", "/events?device=kiosk-001"),
    ("site, part of a name (1 site)", "/events?site=site 042"),
    ("reason, common words", "/events?reason=NO HEARTBEAT"),
    ("reason, rare words", "/events?reason=watchdog"),
    ("reason, no match", "/events?reason=nothing like it"),
    ("kind (alerts log)", "/events?kind=rule_added"),
    ("kind (device events, none)", "/events?kind=re_enrolled"),
]


@contextmanager
def statements():
    """The SQL statements run inside the block, with their parameters."""
    seen: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)


def explain(client, path: str) -> None:
    with statements() as seen:
        client.get(path)
    for statement, parameters in seen:
        if not statement.lstrip().upper().startswith("SELECT") or "user_account" in statement:
            continue
        cursor = db.session.connection().connection.dbapi_connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
        print("   ", "\n    ".join(row[0] for row in cursor.fetchall()))
        print()


def timed(client, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 204), (path, response.status_code)
    return times


def run(url: str, args: argparse.Namespace) -> None:
    env = {"DATABASE_URL": url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"}
    app = create_app({"EMBEDDED_SWEEPER": False}, env=env)
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        sizes = {"devices": args.devices, "events": args.events}
        for sql in (SEED_DEVICES, SEED_EVENTS, SEED_LOG):
            db.session.execute(text(sql), sizes)
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        print(f"seeded {args.devices} devices, {args.events} events in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        users.create_user("bench@example.com", "bench-password", "viewer", utcnow())
        client = app.test_client()
        token = CSRF_FIELD.search(client.get("/login").get_data(as_text=True)).group(1)
        login = {"email": "bench@example.com", "password": "bench-password", "csrf_token": token}
        assert client.post("/login", data=login).status_code == 302
        cursor = event_log.latest_cursor()
        after = quote(f"{cursor.event_id}.{cursor.log_id}")
        for name, path in [*VIEWS, ("poll, nothing new", f"/events/poll?after={after}")]:
            times = timed(client, path, args.runs)
            median = statistics.median(times)
            print(f"{name:<38} median {median:7.1f} ms   max {max(times):7.1f} ms")
            if args.explain:
                explain(client, path)
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--explain", action="store_true", help="print each statement's plan")
    args = parser.parse_args()
    with postgres_database(os.environ.get("DATABASE_URL"), "events") as database:
        run(database, args)


if __name__ == "__main__":
    main()
