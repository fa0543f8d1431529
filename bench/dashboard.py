"""Dashboard benchmark: server time for the fleet page and its poll at 10,000 devices.

    .venv/bin/python -m bench.dashboard [--devices 10000] [--runs 30]

Seeds a fresh SQLite file (or the empty database in DATABASE_URL, migrated
first), logs in through the Flask test client and times, server-side:
the first fleet page, a poll with nothing changed, and a poll with 50 of the
shown devices changed. Targets: poll with nothing changed under 20 ms, first
page under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import func, insert, select, update

from fleet import create_app
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.schema import upgrade
from fleet.services import users
from fleet.timeutil import utcnow

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    scratch = None if url else tempfile.TemporaryDirectory(prefix="pulseboard-bench-")
    url = url or f"sqlite:///{scratch.name}/bench.sqlite3"
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
        client.post("/login", data={"email": "bench@example.com", "password": "bench-password"})

        report("first fleet page (50 rows)", timed(client, "/", args.runs, 200), 150)
        report(
            "page filtered + sorted by flaps",
            timed(client, "/?sort=transitions&flapping=yes", args.runs, 200),
            150,
        )
        shown = (
            db.session.execute(select(Device.id).order_by(Device.status, Device.uid).limit(50))
            .scalars()
            .all()
        )
        cursor = quote((utcnow() - timedelta(seconds=5)).isoformat())
        poll = f"/poll?since={cursor}&shown={','.join(map(str, shown))}"
        report("poll, nothing changed", timed(client, poll, args.runs, 204), 20)
        db.session.execute(update(Device).where(Device.id.in_(shown)).values(changed_at=utcnow()))
        db.session.commit()
        report("poll, 50 shown devices changed", timed(client, poll, args.runs, 200), None)
        db.session.remove()
        db.engine.dispose()
    if scratch:
        scratch.cleanup()


if __name__ == "__main__":
    main()
