"""Dashboard benchmark: server time for the fleet page and its poll at 10,000 devices.

    .venv/bin/python -m bench.dashboard [--devices 10000] [--runs 30] [--postgres]

Seeds a fresh SQLite file (or the empty database in DATABASE_URL, migrated
first; or, with --postgres, a throwaway PostgreSQL it starts and stops), logs
in through the Flask test client and times, server-side: the first fleet page
in its default (severity) order, the Needs attention view, a poll with nothing
changed, and a poll with 50 of the shown devices changed. Then 7,000 connected
devices beat once each with Wi-Fi and battery jittering by up to 2 units, and
a poll of 50 of them that stayed inside their 5-unit band must answer 204.
Targets: first page and Needs attention under 150 ms, poll with nothing
changed under 20 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import func, insert, select, text, update

from bench.seeding import postgres_database
from fleet import create_app
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.schema import upgrade
from fleet.services import dashboard, queries, users
from fleet.services.device_state import fleet_defaults
from fleet.services.fast_heartbeat import TELEMETRY_TYPES, fast_heartbeat
from fleet.services.queries import DEFAULT_SORT, SORTS
from fleet.timeutil import utcnow

BEATING = 7_000
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

STATUSES = ["connected"] * 8 + ["temporarily_offline", "disconnected"]
SITES = [f"site-{n:03}" for n in range(200)]


def seed(count: int, now) -> None:
    """`count` devices across 200 sites and three tiers; 5 % of them flapping."""
    rng = random.Random(7)
    rows = []
    for n in range(count):
        heard = now - timedelta(seconds=rng.randint(0, 900))
        rows.append(
            {
                "uid": f"kiosk-{n:05}",
                "name": f"Screen {n}",
                "site": rng.choice(SITES),
                "token_hash": f"{n:064x}",
                "status": rng.choice(STATUSES),
                "status_reason": "seeded",
                "status_source": "system",
                "status_changed_at": heard,
                "revision": 0,
                "last_heartbeat_at": heard,
                "changed_at": now - timedelta(minutes=10),
                "created_at": now - timedelta(days=1),
                "battery_level": rng.randint(5, 100),
                "wifi_strength": -rng.randint(30, 90),
                # Sampled just now, so a heartbeat takes the fast path on SQLite too.
                "telemetry_sampled_at": now,
            }
        )
    db.session.execute(insert(Device), rows)
    ids = db.session.execute(select(Device.id)).scalars().all()
    events = [
        {
            "device_id": device_id,
            "kind": "status",
            "from_status": "connected",
            "to_status": "temporarily_offline",
            "reason": "seeded",
            "source": "system",
            "created_at": now - timedelta(minutes=rng.randint(1, 50)),
        }
        for device_id in rng.sample(ids, len(ids) // 20)
        for _ in range(5)
    ]
    db.session.execute(insert(DeviceEvent), events)
    db.session.commit()


def timed(client, path: str, runs: int, expect: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == expect, (path, response.status_code)
    return times


def report(name: str, times: list[float], target: float | None) -> None:
    median = statistics.median(times)
    p95 = sorted(times)[int(len(times) * 0.95) - 1]
    verdict = "" if target is None else f"  target {target:.0f} ms: x{median / target:.2f}"
    print(f"{name:<34} median {median:7.1f} ms   p95 {p95:7.1f} ms{verdict}")


def jittering_beats(count: int) -> tuple[int, int, list[int]]:
    """`count` connected devices beat once, Wi-Fi and battery off by up to 2 units.

    Returns how many beat, how many of those beats still counted as a visible change (a value
    that crossed the edge of its 5-unit band) and the ids of the steady ones.
    """
    rng = random.Random(11)
    rows = db.session.execute(
        select(Device.id, Device.token_hash, Device.battery_level, Device.wifi_strength)
        .where(Device.status == "connected")
        .limit(count)
    ).all()
    db.session.commit()
    since, defaults = utcnow(), fleet_defaults()
    blank = dict.fromkeys(TELEMETRY_TYPES)
    for row in rows:
        telemetry = {
            **blank,
            "battery_level": min(100, row.battery_level + rng.randint(-2, 2)),
            "wifi_strength": min(0, row.wifi_strength + rng.randint(-2, 2)),
        }
        assert fast_heartbeat(row.token_hash, telemetry, utcnow(), None, defaults)
    changed = set(db.session.execute(select(Device.id).where(Device.changed_at >= since)).scalars())
    return len(rows), len(changed), [row.id for row in rows if row.id not in changed]


def run(url: str, args: argparse.Namespace) -> None:
    env = {"DATABASE_URL": url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"}
    app = create_app({"EMBEDDED_SWEEPER": False, "WTF_CSRF_ENABLED": False}, env=env)
    with app.app_context():
        upgrade()
        if db.session.execute(select(func.count()).select_from(Device)).scalar_one():
            sys.exit("DATABASE_URL must point at an empty database")
        now = utcnow()
        started = time.perf_counter()
        seed(args.devices, now)
        print(f"seeded {args.devices} devices in {time.perf_counter() - started:.1f} s on {url}")
        users.create_user("bench@example.com", "bench-password", "operator", now)
        client = app.test_client()
        # The dashboard checks CSRF itself (dashboard/__init__.py), whatever WTF_CSRF_ENABLED says.
        token = CSRF_FIELD.search(client.get("/login").get_data(as_text=True)).group(1)
        login = {"email": "bench@example.com", "password": "bench-password", "csrf_token": token}
        assert client.post("/login", data=login).status_code == 302

        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        report("first fleet page (50, severity)", timed(client, "/", args.runs, 200), 150)
        report("needs attention (50 rows)", timed(client, "/?attention=yes", args.runs, 200), 150)
        report(
            "page filtered + sorted by flaps",
            timed(client, "/?sort=transitions&flapping=yes", args.runs, 200),
            150,
        )
        shown = (
            db.session.execute(select(Device.id).order_by(*SORTS[DEFAULT_SORT].order).limit(50))
            .scalars()
            .all()
        )
        cursor = quote((utcnow() - timedelta(seconds=5)).isoformat())
        poll = f"/poll?since={cursor}&shown={','.join(map(str, shown))}"
        report("poll, nothing changed", timed(client, poll, args.runs, 204), 20)
        db.session.execute(update(Device).where(Device.id.in_(shown)).values(changed_at=utcnow()))
        db.session.commit()
        report("poll, 50 shown devices changed", timed(client, poll, args.runs, 200), None)
        cursor = quote((utcnow() - timedelta(seconds=5)).isoformat())
        beats, changed, steady = jittering_beats(BEATING)
        print(f"{beats} jittering heartbeats: {changed} marked a visible change")
        # What the page's poller sends: the tag of the counters it shows.
        tag = dashboard.counts_tag(queries.fleet_counts(utcnow()))
        poll = f"/poll?since={cursor}&seen={tag}&shown={','.join(map(str, steady[:50]))}"
        report("poll, 50 steady rows, after beats", timed(client, poll, args.runs, 204), None)
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if args.postgres:
        with postgres_database(url, "dashboard") as database:
            run(database, args)
        return
    if url:
        run(url, args)
        return
    with tempfile.TemporaryDirectory(prefix="pulseboard-bench-") as scratch:
        run(f"sqlite:///{scratch}/bench.sqlite3", args)


if __name__ == "__main__":
    main()
