"""The sweep as scheduled work: the lock, the run records, RQ and its cron, the embedded loop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import select

from fleet.extensions import db
from fleet.models import SweepRun
from fleet.services import locks
from fleet.services.sweep import SWEEP_LOCK, last_sweep, run_sweep
from fleet.timeutil import utcnow
from jobs import QUEUE
from jobs.embedded import sweeper
from tests.helpers import device_row
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def silent_device(make_device, uid="quiet"):
    return make_device(uid, now=utcnow() - timedelta(seconds=120))


def wait_for(predicate, timeout=20.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_it_records_each_sweep(app, make_device):
    silent_device(make_device)
    report = run_sweep(utcnow(), runner="test")
    assert report.transitions == 1
    run = last_sweep()
    assert (run.runner, run.transitions, run.skipped) == ("test", 1, False)
    assert run.details["by_kind"] == {"connected -> temporarily_offline": 1}


def test_a_second_sweep_at_once_is_skipped_and_recorded(app, make_device):
    silent_device(make_device)
    with locks.held(SWEEP_LOCK, 60, utcnow()) as first:
        second = run_sweep(utcnow(), runner="test")
    assert first
    assert second.skipped
    assert device_row("quiet").status == "connected"
    runs = db.session.execute(select(SweepRun)).scalars().all()
    assert [(run.skipped, run.transitions) for run in runs] == [(True, 0)]
    assert last_sweep() is None


def test_the_lock_is_free_again_after_a_sweep(app, make_device):
    silent_device(make_device)
    run_sweep(utcnow(), runner="test")
    with locks.held(SWEEP_LOCK, 60, utcnow()) as acquired:
        assert acquired


def test_the_first_request_starts_the_embedded_sweeper_and_stop_ends_it(make_app):
    app = make_app(EMBEDDED_SWEEPER=True, SWEEP_INTERVAL_SECONDS=1)
    with app.app_context():
        app.test_client().get("/api/anything")  # any request starts the sweeper
        sweeper = app.extensions["pulseboard_sweeper"]
        assert sweeper.thread.is_alive() and sweeper.interval == 1
        sweeper.stop()
        assert not sweeper.thread.is_alive()
        # The alerts' delivery round starts beside it.
        delivery = app.extensions["pulseboard_delivery"]
        assert delivery.thread.is_alive()
        delivery.stop()


def test_an_embedded_sweep_disconnects_a_device_gone_silent(make_app, make_device_in, time_machine):
    app = make_app(EMBEDDED_SWEEPER=True)
    with app.app_context():
        make_device_in("gone", now=utcnow())
        time_machine.move_to(utcnow() + timedelta(seconds=900))
        sweeper(app).run_once()
        assert device_row("gone").status == "disconnected"
        assert last_sweep().runner == "embedded"


def test_an_embedded_sweep_that_fails_is_logged_and_survived(backend, make_app, capsys):
    unreachable = {
        "sqlite": "sqlite:////nonexistent/dir/pulseboard.sqlite3",
        "postgres": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone",
    }[backend]
    app = make_app(SQLALCHEMY_DATABASE_URI=unreachable, REDIS_URL=None)
    sweeper(app).run_once()  # no exception escapes the loop's body
    assert "embedded_sweep_failed" in capsys.readouterr().err


@pytest.fixture
def make_device_in():
    from fleet.services import enrolment

    def make(uid, now):
        enrolment.register_device(uid, now)

    return make


def run_process(args, env, timeout=60):
    return subprocess.run(
        args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


class TestWithRedis:
    @pytest.fixture(autouse=True)
    def needs_redis(self, backend):
        if backend != "postgres":
            pytest.skip("RQ needs Redis, which runs with the PostgreSQL backend")

    def test_a_real_worker_runs_the_sweep_job(self, app, app_env, make_device):
        silent_device(make_device)
        queue = Queue(QUEUE, connection=locks.redis_client())
        job = queue.enqueue("jobs.tasks.sweep_timeouts")
        result = run_process([str(BIN / "flask"), "jobs", "worker", "--burst"], app_env)
        assert result.returncode == 0, result.stderr
        job.refresh()
        assert job.get_status() == "finished", result.stderr
        assert job.return_value()["transitions"] == 1
        assert device_row("quiet").status == "temporarily_offline"
        db.session.rollback()
        assert last_sweep().runner == "rq"

    def test_the_cron_command_enqueues_the_sweep_on_schedule(self, app, app_env):
        queue = Queue(QUEUE, connection=locks.redis_client())
        env = {**app_env, "SWEEP_INTERVAL_SECONDS": "1"}
        process = subprocess.Popen(
            [str(BIN / "flask"), "jobs", "cron"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_for(lambda: queue.count >= 2, timeout=15)
        finally:
            process.terminate()
            process.wait(timeout=10)
        names = {job.func_name for job in queue.get_jobs()}
        # The one schedule holds the sweep, the alerts' delivery round and history pruning.
        assert "jobs.tasks.sweep_timeouts" in names
        assert names <= {
            "jobs.tasks.sweep_timeouts",
            "jobs.tasks.deliver_alerts",
            "jobs.tasks.prune_history",
        }


def test_the_worker_command_refuses_to_start_without_redis(tmp_path):
    from fleet import create_app
    from tests.conftest import TEST_OVERRIDES, base_env

    app = create_app(TEST_OVERRIDES, env=base_env(f"sqlite:///{tmp_path}/db.sqlite3"))
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--burst"])
    assert result.exit_code != 0
    assert "REDIS_URL is not set" in result.output


def test_the_delivery_job_runs_one_alerts_round(app):
    from jobs.tasks import deliver_alerts

    assert deliver_alerts() == {
        "opened": 0, "reminders": 0, "flapping_resolved": 0,
        "sent": 0, "retrying": 0, "failed": 0, "lost_races": 0,
    }  # fmt: skip
