"""Benchmark: the schedule tick when 100 sites of 10,000 devices close, and when nothing changes.

    .venv/bin/python -m bench.hours [--devices 10000] [--sites 100] [--idle-ticks 50]

Starts a throwaway PostgreSQL (or uses DATABASE_URL), seeds the devices across
the sites, gives every site hours, then times:

1. closing: one tick that finds every site closed, updates every device
   (a statement per state) and records 10,000 `expected_off` events;
2. idle ticks in the same minute (what every sweep costs while nothing changes);
3. the first tick of a new minute (every site's opening decided again);
4. opening: the tick that finds every site open again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from bench.alerts import spread_over_sites
from bench.seeding import migrated_app, postgres_database, seed
from fleet.extensions import db
from fleet.models import Device
from fleet.schedules import DAYS
from fleet.services import hours
from fleet.services.schedule_tick import run_schedule_tick

CLOSING = datetime(2026, 12, 1, 20, 0, 30, tzinfo=UTC)
WEEKDAYS = {"timezone": "UTC", "weekly": {day: [["08:00", "20:00"]] for day in DAYS[:5]}}


def timed(now: datetime) -> float:
    start = time.perf_counter()
    run_schedule_tick(now)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--idle-ticks", type=int, default=50)
    args = parser.parse_args()
    with postgres_database(os.environ.get("DATABASE_URL"), "bench_hours") as url:
        app = migrated_app(url)
        with app.app_context():
            seed(args.devices)
            spread_over_sites(args.sites)
            db.session.execute(text("ANALYZE device"))
            db.session.commit()
            for n in range(args.sites):
                hours.set_site_hours(
                    f"Site {n:03d}", WEEKDAYS, "bench", CLOSING - timedelta(hours=2)
                )
            closing = timed(CLOSING)
            off = db.session.execute(
                select(func.count()).where(Device.expected_off == "off_hours")
            ).scalar_one()
            idle = [timed(CLOSING + timedelta(seconds=1 + i % 20)) for i in range(args.idle_ticks)]
            new_minute = timed(CLOSING + timedelta(minutes=1))
            opening = timed(CLOSING + timedelta(hours=12))
    print(f"{args.devices} devices, {args.sites} sites, PostgreSQL")
    print(f"closing tick: {closing:.0f} ms ({off} devices to off hours, one event each)")
    print(f"idle tick, same minute: median {statistics.median(idle):.2f} ms, "
          f"max {max(idle):.2f} ms over {len(idle)}")  # fmt: skip
    print(f"first tick of a new minute (every site decided again): {new_minute:.1f} ms")
    print(f"opening tick: {opening:.0f} ms")


if __name__ == "__main__":
    main()
