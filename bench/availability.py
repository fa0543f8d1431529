"""Availability at scale: 10,000 devices with 90 days of history, against the naive fold.

    .venv/bin/python -m bench.availability [--devices 10000] [--days 90] [--runs 5]

Starts a throwaway PostgreSQL (or uses DATABASE_URL, an empty database) and seeds
10,000 devices over 2,000 sites with 90 days of history: each device's events
from the demo history's story (nights off at a third of the sites, drop-outs,
long outages), folded into rollups, tallies and outages by the same code the
transactions run (`tally.advance`), and all of it written with COPY. Then it
times, each the median of --runs:
- the 30-day fleet report from the rollups, and the same figure folded naively
  from the raw events (what a report without rollups would have to do);
- the Sites page (GET /sites, worst first, 50 sites a page), rendered;
- a device page's two bars from the rollups, and from its raw events;
- the CSV of every device streamed: the peak of Python's memory while it
  streams, against the CSV's size and against building the rows in a list.
Targets: report < 1 s, site page < 150 ms, bars < 50 ms, CSV memory flat.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update

from bench.seeding import migrated_app, postgres_database
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.services import users
from fleet.services.availability import bars, reports, sites
from fleet.services.availability.demo_history import story
from fleet.services.availability.fold import (
    FOLDED_KINDS,
    State,
    change_of,
    clipped,
    initial_status,
    segments,
)
from fleet.services.availability.rebuild import prune_history
from fleet.services.availability.tally import (
    SECONDS_COLUMNS,
    Tally,
    Writes,
    advance,
    shift_site_hours,
)
from fleet.services.availability.windows import window_of
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from fleet.tokens import hash_token

CHUNK = 500
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
EVENT_COLUMNS = (
    "device_id",
    "kind",
    "from_status",
    "to_status",
    "reason",
    "source",
    "actor",
    "heartbeat_age_seconds",
    "details",
    "created_at",
)


def copy_rows(table: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    """COPY `rows` into `table` on the session's connection."""
    cursor = db.session.connection().connection.dbapi_connection.cursor()
    with cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed_devices(count: int, site_count: int, start) -> list[Any]:
    """The devices, enrolled `days` ago, connected now; returns (id, uid, site) rows."""
    rows = (
        (
            f"dev-{n:05d}",
            f"Screen {n}",
            f"Site {n % site_count:04d}",
            hash_token(f"pbd_avail_{n}"),
            "connected",
            "heartbeat",
            "device",
            start,
            0,
            start,
            start,
            start,
        )
        for n in range(count)
    )
    columns = [
        "uid",
        "name",
        "site",
        "token_hash",
        "status",
        "status_reason",
        "status_source",
        "status_changed_at",
        "revision",
        "last_heartbeat_at",
        "changed_at",
        "created_at",
    ]
    copy_rows("device", columns, rows)
    db.session.commit()
    return db.session.execute(select(Device.id, Device.uid, Device.site).order_by(Device.id)).all()


def seed_history(devices: list[Any], start, now) -> int:
    """Each device's story as events, its rollups, tally and outages; all COPYed, by chunk."""
    from psycopg.types.json import Json

    total = 0
    for begin in range(0, len(devices), CHUNK):
        chunk = devices[begin : begin + CHUNK]
        events, writes = [], Writes.empty()
        for device in chunk:
            told = list(story(device, random.Random(device.uid), start, now))
            events.extend(told)
            changes = [change_of(event) for event in told]
            advance(Tally(device.id, start, State("connected"), None), changes, writes)
        total += len(events)
        copy_rows(
            "device_event",
            EVENT_COLUMNS,
            (
                [
                    Json(v) if isinstance(v, dict) else v
                    for v in (getattr(e, c) for c in EVENT_COLUMNS)
                ]
                for e in events
            ),
        )
        _copy_writes(writes, now)
        # The site hour rows from the device ones just written, as the tally would file them.
        shift_site_hours([device.id for device in chunk], 1)
        db.session.commit()
    return total


def _copy_writes(writes: Writes, now) -> None:
    def seconds(totals, key):
        for (device_id, bucket), s in totals.items():
            bucket = bucket.date() if key == "day" else bucket
            yield (device_id, bucket, *s.as_dict().values(), s.expected_on)

    copy_rows(
        "availability_day", ("device_id", "day", *SECONDS_COLUMNS), seconds(writes.days, "day")
    )
    copy_rows(
        "availability_hour", ("device_id", "hour", *SECONDS_COLUMNS), seconds(writes.hours, "hour")
    )
    tallies = {t.device_id: t for t in writes.tallies}
    copy_rows(
        "availability_tally",
        ("device_id", "tallied_to", "status", "expected_off", "outage_since"),
        ((t.device_id, t.tallied_to, t.state.status, t.state.expected_off, t.outage_since)
         for t in tallies.values()),
    )  # fmt: skip
    closed = {(c["d"], c["s"]): c for c in writes.closed}

    def outage(row: dict[str, Any]) -> tuple:
        end = closed.get((row["device_id"], row["started_at"]), {})
        return (row["device_id"], row["started_at"], end.get("e"), row["status"], row["reason"],
                end.get("by"))  # fmt: skip

    copy_rows(
        "outage",
        ("device_id", "started_at", "ended_at", "status", "reason", "ended_by"),
        (outage(row) for row in writes.opened),
    )


def naive_fleet(window, device_ids: list[int] | None = None) -> Any:
    """The window's seconds folded from every raw event up to its end: no rollups at all."""
    query = (
        select(
            DeviceEvent.device_id,
            DeviceEvent.kind,
            DeviceEvent.from_status,
            DeviceEvent.to_status,
            DeviceEvent.details,
            DeviceEvent.reason,
            DeviceEvent.created_at,
        )
        .where(DeviceEvent.kind.in_(FOLDED_KINDS), DeviceEvent.created_at < window.end)
        .order_by(DeviceEvent.device_id, DeviceEvent.created_at, DeviceEvent.id)
    )
    devices = select(Device.id, Device.created_at, Device.status)
    if device_ids is not None:
        query = query.where(DeviceEvent.device_id.in_(device_ids))
        devices = devices.where(Device.id.in_(device_ids))
    per_device: dict[int, list] = {row.id: [] for row in db.session.execute(devices)}
    created = {row.id: (row.created_at, row.status) for row in db.session.execute(devices)}
    for row in db.session.execute(query.execution_options(yield_per=20_000)):
        per_device[row.device_id].append(change_of(row))
    from fleet.services.availability.fold import Seconds

    total = Seconds()
    for device_id, changes in per_device.items():
        enrolled, status = created[device_id]
        fold = segments(State(initial_status(changes, status)), enrolled, changes, window.end)
        total.merge(clipped(fold.segments, window.start, window.end))
    return total


def timed(work: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The median milliseconds of `runs` calls, and the last result."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
        db.session.rollback()
    return statistics.median(times), result


def say(name: str, ms: float, target: float | None = None, naive: float | None = None) -> None:
    parts = [f"{name:<44} {ms:9.1f} ms"]
    if target is not None:
        parts.append(f"(target < {target:.0f} ms: {'ok' if ms < target else 'MISSED'})")
    if naive is not None:
        parts.append(f"naive from raw events {naive:9.1f} ms = {naive / ms:6.1f}x slower")
    print("  ".join(parts))


def csv_memory(now) -> dict[str, float]:
    """Python's peak memory (MB) after the first 1,000 CSV lines and after all of them.

    Streaming is flat when what it holds midway through two batches is the same:
    the rows already written are gone (the peak is one fetched batch more). For
    scale: the CSV's size, and the peak when it is built as a list.
    """
    day = now.date()
    first = day - timedelta(days=29)
    figures = {}
    tracemalloc.start()
    size = 0
    for n, line in enumerate(reports.availability_csv(first, day, "device", now)):
        size += len(line)
        if n == 1000:
            figures["peak after 1,000 lines"] = tracemalloc.get_traced_memory()[1] / 1e6
        # What the stream holds between batches: flat if it is the same at both.
        if n in (1500, 9500):
            figures[f"held at line {n:,}"] = tracemalloc.get_traced_memory()[0] / 1e6
    figures["peak after all lines"] = tracemalloc.get_traced_memory()[1] / 1e6
    figures["CSV size"] = size / 1e6
    tracemalloc.reset_peak()
    rows = list(reports.availability_csv(first, day, "device", now))
    figures["peak building a list"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    del rows
    return figures


def getter(client) -> Callable[[str], Callable[[], Any]]:
    """A timed GET of `path` that must answer 200 (a redirect to the login would time nothing)."""

    def get(path: str) -> Callable[[], Any]:
        def fetch() -> Any:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            return response

        return fetch

    return get


def logged_in_client(app, now):
    from fleet.models import User

    if db.session.execute(select(User.id).where(User.email == "bench@example.com")).first() is None:
        users.create_user("bench@example.com", "bench-password", "viewer", now)
    client = app.test_client()
    token = CSRF_FIELD.search(client.get("/login").get_data(as_text=True)).group(1)
    login = {"email": "bench@example.com", "password": "bench-password", "csrf_token": token}
    assert client.post("/login", data=login).status_code == 302
    return client


def run(url: str, args: argparse.Namespace) -> None:
    app = migrated_app(url)
    with app.app_context():
        seeded = db.session.execute(select(func.count()).select_from(Device)).scalar_one()
        if seeded and not args.reuse:
            sys.exit("DATABASE_URL must point at an empty database (or pass --reuse)")
        now = utcnow()
        start = now - timedelta(days=args.days)
        started = time.perf_counter()
        if seeded:
            devices = db.session.execute(
                select(Device.id, Device.uid, Device.site).order_by(Device.id)
            ).all()
            events = 0
        else:
            devices = seed_devices(args.devices, args.sites, start)
            events = seed_history(devices, start, now)
            # The history job, as a running fleet runs it hourly: idle tallies moved on to
            # now (the seeded ones are at each device's last event), hours past 48 pruned.
            job_started = time.perf_counter()
            pruned = prune_history(now)
            print(
                f"history job after seeding: {pruned.tallies_moved} tallies moved on, "
                f"{pruned.hours} hour rows pruned, in {time.perf_counter() - job_started:.1f} s"
            )
        db.session.commit()
        vacuum()
        counted = {
            table: db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("device_event", "availability_day", "availability_hour", "outage")
        }
        print(
            f"seeded {args.devices} devices, {args.sites} sites, {args.days} days: "
            f"{events} events, {counted} in {time.perf_counter() - started:.0f} s"
        )
        window = window_of("30d", now)
        report_ms, fleet = timed(lambda: reports.grouped_report(window, "fleet")[0], args.runs)
        naive_ms, naive = (
            (report_ms, fleet.seconds) if args.skip_naive else timed(lambda: naive_fleet(window), 1)
        )
        agree = all(
            abs(getattr(fleet.seconds, k) - getattr(naive, k)) < 1 for k in fleet.seconds.as_dict()
        )
        say("30-day fleet report (rollups)", report_ms, 1000, naive_ms)
        if not agree:
            print("  rollups", fleet.seconds.as_dict(), "\n  naive  ", naive.as_dict())
        print(
            f"  fleet availability {fleet.seconds.availability:.6f}; "
            f"naive agrees to the second: {agree}"
        )
        report_rows = db.session.execute(
            select(func.count()).where(text("day >= :d")).select_from(text("availability_day")),
            {"d": window.first_day},
        ).scalar_one()
        print(f"  day rollup rows read: {report_rows}")

        client = logged_in_client(app, now)
        get = getter(client)
        page_ms, _ = timed(get("/sites"), args.runs)
        say("Sites page, worst first (GET /sites, 50 sites)", page_ms, 150)
        service_ms, _ = timed(lambda: sites.sites_screen("", "worst", 1, now), args.runs)
        say("  of which the sites service", service_ms)
        search_ms, _ = timed(get("/sites?q=Site%20012"), args.runs)
        say("Sites page, searched", search_ms, 150)

        device = devices[len(devices) // 3]
        bars_ms, _ = timed(lambda: bars.device_bars(device.id, now), args.runs)
        naive_bars_ms, _ = timed(
            lambda: (
                naive_fleet(window_of("24h", now), [device.id]),
                naive_fleet(window, [device.id]),
            ),
            args.runs,
        )
        say("a device page's two bars (24 h + 30 d)", bars_ms, 50, naive_bars_ms)
        page_ms, _ = timed(get(f"/devices/{device.uid}"), args.runs)
        say("  the whole device page", page_ms)
        grid_ms, _ = timed(lambda: bars.grid_bars([d.id for d in devices[:50]], now), args.runs)
        say("the grid's 50 compact bars (one query)", grid_ms)

        csv_ms, lines = timed(
            lambda: sum(1 for _ in reports.availability_csv(
                window.first_day, now.date(), "device", now)), 1,
        )  # fmt: skip
        say(f"CSV of {lines - 1} devices, 30 days, streamed", csv_ms)
        figures = csv_memory(now)
        print("  " + "; ".join(f"{name} {value:.1f} MB" for name, value in figures.items()))
        sweep_figures(args.runs, now)
        db.session.remove()
        db.engine.dispose()


def vacuum() -> None:
    """What autovacuum does within a minute of a bulk load, before the pages are timed."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def sweep_figures(runs: int, now) -> None:
    """What the tally adds to a sweep that disconnects every device: without it, then with it.

    Last, because it leaves every device disconnected. The baseline stubs the
    hook out here, in the benchmark only.
    """
    from fleet.services import events

    hook = events._tally_availability
    for name, stub in (
        ("without the tally (hook stubbed)", lambda _events: None),
        ("with the tally", hook),
    ):
        events._tally_availability = stub
        times = []
        for run in range(max(1, runs // 2)):
            at = now + timedelta(minutes=10 * (run + 1) + (0 if stub is hook else 5))
            db.session.execute(
                update(Device).values(
                    status="connected", offline_due_at=at - timedelta(seconds=2),
                    disconnect_due_at=at - timedelta(seconds=1),
                )
            )  # fmt: skip
            db.session.commit()
            started = time.perf_counter()
            report = enforce_timeouts(at)
            times.append((time.perf_counter() - started) * 1000)
        say(f"sweep disconnecting {report.transitions}, {name}", statistics.median(times))
    events._tally_availability = hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--reuse", action="store_true", help="DATABASE_URL is seeded already: time it again"
    )
    parser.add_argument("--skip-naive", action="store_true", help="leave out the slow naive fold")
    args = parser.parse_args()
    with postgres_database(os.environ.get("DATABASE_URL"), "availability") as url:
        run(url, args)


if __name__ == "__main__":
    main()
