"""Faults the scheduled sweep must ride out, with real processes on PostgreSQL and Redis:
a worker killed with SIGKILL mid-sweep, a scheduler killed, and the suite's own Redis
stopped for a while and started again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from rq import Queue

from fleet.extensions import db
from fleet.health import STARTED_AT_KEY
from fleet.services import locks
from fleet.services.sweep import SWEEP_LOCK, last_sweep, run_sweep
from fleet.timeutil import utcnow
from jobs import QUEUE
from tests.helpers import device_row
from tests.jobs.test_sweep_jobs import BIN, ROOT, silent_device, wait_for

LOCK_KEY = f"pulseboard:lock:{SWEEP_LOCK}"
INTERVAL = 6  # SWEEP_INTERVAL_SECONDS for these tests: the lock's lease


@pytest.fixture(autouse=True)
def needs_postgres_and_redis(backend):
    if backend != "postgres":
        pytest.skip("the worker and its lock need Redis, which runs with the PostgreSQL backend")


@pytest.fixture
def env(app_env):
    return {**os.environ, **app_env, "SWEEP_INTERVAL_SECONDS": str(INTERVAL)}


@pytest.fixture
def app(make_app):
    app = make_app(SWEEP_INTERVAL_SECONDS=INTERVAL)
    with app.app_context():
        yield app


def start(args, env):
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def children(pid):
    """The processes `pid` forked (RQ's work horse runs the job in one, in a session of its own)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in task.read_text().split()]
    return found


def kill_hard(process):
    """SIGKILL the process and the children it forked, as a lost machine would end them."""
    for pid in [*children(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def waiting_on_a_row_lock(url):
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND query ILIKE 'UPDATE device%'"
        ).fetchone()
    return row[0] > 0


def test_a_sweep_killed_mid_way_is_replaced_within_about_one_interval(
    app, app_env, env, make_device
):
    silent_device(make_device)
    client = locks.redis_client()
    # Hold the due device's row, so the worker's sweep stops in its first chunk, lock held.
    blocker = psycopg.connect(app_env["DATABASE_URL"].replace("+psycopg", ""))
    blocker.execute("SELECT id FROM device WHERE uid = 'quiet' FOR UPDATE")
    Queue(QUEUE, connection=client).enqueue("jobs.tasks.sweep_timeouts")
    worker = start([str(BIN / "flask"), "jobs", "worker", "--burst"], env)
    try:
        assert wait_for(lambda: waiting_on_a_row_lock(app_env["DATABASE_URL"]), timeout=30)
        assert children(worker.pid), "the sweep runs in RQ's forked work horse"
        assert 0 < client.pttl(LOCK_KEY) <= INTERVAL * 1000  # a lease, not 300 s
        kill_hard(worker)
        killed_at = time.monotonic()
    finally:
        kill_hard(worker)
        blocker.rollback()
        blocker.close()

    def a_sweep_runs():
        db.session.rollback()
        return not run_sweep(utcnow(), runner="test").skipped

    assert wait_for(a_sweep_runs, timeout=INTERVAL + 10, every=0.25)
    replaced_after = time.monotonic() - killed_at
    assert replaced_after <= INTERVAL + 1.5, replaced_after
    assert device_row("quiet").status == "temporarily_offline"


def test_a_live_sweep_keeps_its_lock_past_the_lease_by_renewing_it(app, make_device):
    """Many chunks, each renewing the lease: no other sweep gets in, however long it runs."""
    old = utcnow() - timedelta(seconds=120)
    for n in range(3):
        make_device(f"quiet-{n}", now=old)
    client = locks.redis_client()
    seen: list[int] = []
    with locks.held(SWEEP_LOCK, 1, utcnow()) as lock:
        for _ in range(3):
            time.sleep(0.6)  # past the 1 s lease by the end, but renewed within it each time
            lock.renew()
            seen.append(client.pttl(LOCK_KEY))
            assert run_sweep(utcnow(), runner="test").skipped
    assert all(500 < ttl <= 1000 for ttl in seen), seen


OUTAGE_SECONDS = 10


@pytest.fixture
def fast_env(app_env):
    """Sweeps every second, so that a sweep missed or resumed shows at once."""
    return {**os.environ, **app_env, "SWEEP_INTERVAL_SECONDS": "1"}


def stop_gently(*processes):
    for process in processes:
        if process.poll() is None:
            process.terminate()
    return [process.wait(timeout=20) for process in processes]


def sweeps_by_rq_since(moment):
    db.session.rollback()
    run = last_sweep()
    return run is not None and run.runner == "rq" and run.started_at > moment


def doctor_says(app, line):
    return line in app.test_cli_runner().invoke(args=["doctor"]).output


def test_the_worker_and_the_scheduler_ride_out_a_redis_outage(
    app, fast_env, redis_server, make_device
):
    worker = start([str(BIN / "flask"), "jobs", "worker"], fast_env)
    cron = start([str(BIN / "flask"), "jobs", "cron"], fast_env)
    try:
        assert wait_for(lambda: sweeps_by_rq_since(utcnow() - timedelta(minutes=1)), timeout=30)
        # Due for temporarily offline (interval + grace = 60 s) in the middle of the outage.
        make_device("quiet", now=utcnow() - timedelta(seconds=60 - OUTAGE_SECONDS / 2))
        redis_server.stop()
        try:
            time.sleep(OUTAGE_SECONDS)  # a real outage: the processes must not die of it
            assert (worker.poll(), cron.poll()) == (None, None)
            assert device_row("quiet").status == "connected"  # no sweep without Redis
        finally:
            redis_server.restart()
        back_at = utcnow()
        assert wait_for(lambda: device_row("quiet").status == "temporarily_offline", timeout=20)
        # Sweeps go on every second (the one that moved the device may have started
        # in the instant between Redis accepting connections and `back_at`).
        assert wait_for(lambda: sweeps_by_rq_since(back_at), timeout=10)
        # Redis came back empty; both announce themselves again by themselves.
        assert wait_for(lambda: doctor_says(app, "[ ok ] workers: 1 RQ worker(s) alive"), 15)
        assert doctor_says(app, "[ ok ] cron: 1 RQ cron scheduler(s) alive")
        assert app.test_client().get("/readyz").json["checks"]["cron"]["ok"] is True
    finally:
        codes = stop_gently(worker, cron)
    assert codes == [0, 0]


def test_doctor_and_readyz_name_a_dead_scheduler(app, fast_env):
    app.config["SWEEP_INTERVAL_SECONDS"] = 1  # as the processes see it
    app.extensions[STARTED_AT_KEY] = utcnow() - timedelta(hours=1)  # no start-up grace
    cron = start([str(BIN / "flask"), "jobs", "cron"], fast_env)
    client = app.test_client()
    try:
        assert wait_for(lambda: client.get("/readyz").json["checks"]["cron"]["ok"], timeout=30)
    finally:
        kill_hard(cron)  # dies without a word to Redis
    killed_at = time.monotonic()
    assert wait_for(lambda: not client.get("/readyz").json["checks"]["cron"]["ok"], timeout=15)
    assert time.monotonic() - killed_at <= 2 * 1 + 5 + 1  # two beats missed, plus slack
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["cron"]["detail"].startswith(
        "the RQ cron scheduler is dead: last heartbeat"
    )
    assert doctor_says(app, "[FAIL] cron: the RQ cron scheduler is dead")
    assert doctor_says(app, "fix: start `flask jobs cron`")
