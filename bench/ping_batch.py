"""How long applying a batch of 500 ping results takes, on SQLite and PostgreSQL.

    .venv/bin/python bench/ping_batch.py

Starts a throwaway PostgreSQL from the installed binaries (as the tests do);
prints one line per backend and case.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import create_app
from fleet.extensions import db
from fleet.schema import upgrade
from fleet.services import enrolment
from fleet.services.pings import PingResult, apply_pings
from fleet.timeutil import utcnow
from tests import servers

DEVICES = 500


def measure(database_url: str, label: str) -> None:
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    app = create_app({"EMBEDDED_SWEEPER": False}, env=env)
    with app.app_context():
        upgrade()
        stale = utcnow() - timedelta(seconds=120)
        for n in range(DEVICES):
            enrolment.register_device(f"kiosk-{n:04d}", stale)
        results = [PingResult(f"kiosk-{n:04d}", n % 2 == 0, 1.0) for n in range(DEVICES)]
        for case in ("half of them status changes", "diagnosis only"):
            started = time.perf_counter()
            apply_pings(results, utcnow(), actor="bench")
            took = (time.perf_counter() - started) * 1000
            print(f"{label:10} {DEVICES} results, {case:28} {took:7.0f} ms")
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    measure(f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3", "sqlite")
    try:
        postgres = servers.start_postgres()
    except servers.ServerUnavailable as missing:
        print(f"postgres   skipped: {missing}")
        return
    try:
        measure(postgres.create_database("bench"), "postgres")
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
