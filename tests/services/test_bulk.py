"""Bulk actions: a fleet view's devices asked to reconnect a chunk per transaction, resumable."""

import threading
import time
from datetime import timedelta

from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from fleet.extensions import db
from fleet.models import DeviceEvent
from fleet.services import bulk, locks
from fleet.services.queries import DeviceFilter
from fleet.timeutil import utcnow
from jobs import QUEUE
from jobs.bulk import resume_stalled
from tests.helpers import configure, device_row

T0 = utcnow().replace(microsecond=0)
LOBBY = DeviceFilter(site="Lobby")


def lobby(make_device, count):
    for n in range(count):
        make_device(f"kiosk-{n}", now=T0, site="Lobby")
    make_device("elsewhere", now=T0, site="Atrium")


def requests_made() -> int:
    query = select(func.count()).where(DeviceEvent.kind == "reconnect_requested")
    return db.session.execute(query).scalar_one()


def test_a_run_asks_every_matching_device_once_with_delays_spread_over_the_run(app, make_device):
    configure(app, BULK_CHUNK_SIZE=2, BULK_RECONNECT_SPREAD_SECONDS=60, RECONNECT_DELAY_SECONDS=5)
    lobby(make_device, 5)
    action = bulk.start_bulk_reconnect(LOBBY, "ops", T0)
    assert (action.total, action.done, action.state) == (5, 0, "running")
    finished = bulk.run_bulk_action(action.id, T0)
    assert (finished.done, finished.state, finished.finished_at) == (5, "done", T0)
    delays = [device_row(f"kiosk-{n}").reconnect_delay_seconds for n in range(5)]
    assert delays == [5, 17, 29, 41, 53]
    assert device_row("elsewhere").reconnect_state is None
    assert requests_made() == 5


def test_each_chunk_commits_with_its_progress(app, make_device):
    configure(app, BULK_CHUNK_SIZE=2)
    lobby(make_device, 5)
    action = bulk.start_bulk_reconnect(LOBBY, "ops", T0)
    assert bulk.run_chunk(action.id, T0)
    db.session.rollback()  # nothing left uncommitted: what the chunk did is stored
    progress = bulk.get_bulk_action(action.id)
    assert (progress.done, progress.state) == (2, "running")
    pending = [device_row(f"kiosk-{n}").reconnect_state for n in range(5)]
    assert pending == ["pending", "pending", None, None, None]


def test_a_run_whose_runner_died_is_found_stalled_and_resumed_where_it_stopped(app, make_device):
    configure(app, BULK_CHUNK_SIZE=2, BULK_STALL_SECONDS=60)
    lobby(make_device, 5)
    action = bulk.start_bulk_reconnect(LOBBY, "ops", T0)
    bulk.run_chunk(action.id, T0)  # then the worker is killed
    assert bulk.stalled_bulk_actions(T0 + timedelta(seconds=30)) == []
    assert bulk.stalled_bulk_actions(T0 + timedelta(seconds=61)) == [action.id]
    resumed = bulk.run_bulk_action(action.id, T0 + timedelta(seconds=61))
    assert (resumed.done, resumed.state) == (5, "done")
    assert requests_made() == 5  # nobody asked twice
    assert bulk.stalled_bulk_actions(T0 + timedelta(hours=1)) == []


def test_two_runners_of_one_run_ask_each_device_once(app, make_device):
    configure(app, BULK_CHUNK_SIZE=3)
    lobby(make_device, 30)
    action = bulk.start_bulk_reconnect(LOBBY, "ops", T0)
    errors = []

    def run() -> None:
        try:
            with app.app_context():
                bulk.run_bulk_action(action.id, T0)
        except Exception as error:  # a lost race must not surface as an error
            errors.append(error)

    runners = [threading.Thread(target=run) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert errors == []
    assert requests_made() == 30
    assert bulk.get_bulk_action(action.id).state == "done"


def test_a_view_matching_nobody_finishes_at_once(app):
    action = bulk.start_bulk_reconnect(LOBBY, "ops", T0)
    assert (bulk.run_bulk_action(action.id, T0).state, action.total) == ("done", 0)


def test_the_sweep_job_resumes_a_run_whose_worker_died(app, make_device, backend):
    configure(app, BULK_CHUNK_SIZE=2, BULK_STALL_SECONDS=10)
    lobby(make_device, 5)
    action = bulk.start_bulk_reconnect(LOBBY, "ops", T0 - timedelta(minutes=5))
    bulk.run_chunk(action.id, T0 - timedelta(minutes=5))  # then its worker was killed
    assert resume_stalled(app) == 1
    if backend == "postgres":  # with Redis the resumed run is an RQ job for a real worker
        SimpleWorker([Queue(QUEUE, connection=locks.redis_client())]).work(burst=True)
    deadline = time.monotonic() + 20
    while bulk.get_bulk_action(action.id).state != "done" and time.monotonic() < deadline:
        db.session.rollback()
        time.sleep(0.05)
    assert bulk.get_bulk_action(action.id).done == 5
    assert requests_made() == 5
