"""Heartbeats, reconnect requests and sweeps racing on the same devices.

Runs on both backends: on PostgreSQL the writers really interleave (row locks
and compare-and-set on the revision); on SQLite they serialise on the file lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from fleet.extensions import db
from fleet.models import Device, DeviceEvent, TelemetrySample
from fleet.services import device_state, heartbeats, reconnects
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from fleet.tokens import hash_token

DEVICES = 4
HEARTBEAT_THREADS = 6
REQUESTS_PER_DEVICE = 3


def run_in_context(app, errors, work):
    def runner():
        try:
            with app.app_context():
                work()
        except BaseException as error:  # surfaced by the assertion on `errors`
            errors.append(error)
        finally:
            with app.app_context():
                db.session.remove()

    return threading.Thread(target=runner)


def run_together(app, workers, stop: threading.Event, errors: list[BaseException]) -> None:
    """Run each worker in its own thread and app context; fail on any error it raised."""
    threads = [run_in_context(app, errors, work) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    assert not errors, errors
    db.session.expire_all()


def test_racing_writers_end_consistent_and_deliver_each_reconnect_once(app, make_device):
    tokens = {f"kiosk-{n}": make_device(f"kiosk-{n}").token for n in range(DEVICES)}
    stop = threading.Event()
    deliveries: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def send_heartbeats(seed: int) -> None:
        rng = random.Random(seed)
        sent = 0
        while not stop.is_set() or sent < 20:
            uid = rng.choice(list(tokens))
            token = tokens[uid]
            result = heartbeats.accept_heartbeat(
                hash_token(token), heartbeats.Telemetry(), utcnow()
            )
            if result.should_reconnect:
                with lock:
                    deliveries[uid] += 1
            sent += 1

    def sweep_ahead() -> None:
        # Far enough ahead to disconnect everyone, not far enough to expire a reconnect.
        while not stop.is_set():
            enforce_timeouts(utcnow() + timedelta(seconds=400))
            time.sleep(0.005)

    def request_reconnects() -> None:
        for _ in range(REQUESTS_PER_DEVICE):
            for uid in tokens:
                reconnects.request_reconnect(uid, "ops@example.com", utcnow(), delay_seconds=1)
                _wait_until_delivered(uid)
        stop.set()

    workers = [lambda seed=seed: send_heartbeats(seed) for seed in range(HEARTBEAT_THREADS)]
    workers += [sweep_ahead, request_reconnects]
    run_together(app, workers, stop, errors)
    for uid in tokens:
        assert deliveries[uid] == REQUESTS_PER_DEVICE, uid
        assert _event_count(uid, "reconnect_delivered") == REQUESTS_PER_DEVICE
        _assert_status_events_form_one_chain(uid)
    total_transitions = sum(_event_count(uid, "status") for uid in tokens)
    assert total_transitions > 0, "the sweeper never raced a heartbeat; the test proved nothing"


def _wait_until_delivered(uid: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        db.session.expire_all()
        state = db.session.execute(select(Device.reconnect_state).where(Device.uid == uid)).scalar()
        db.session.rollback()
        if state == "delivered":
            return
        time.sleep(0.002)
    raise AssertionError(f"reconnect for {uid} never delivered")


def _events(uid: str, kind: str) -> list[DeviceEvent]:
    return list(
        db.session.execute(
            select(DeviceEvent)
            .join(Device, Device.id == DeviceEvent.device_id)
            .where(Device.uid == uid, DeviceEvent.kind == kind)
            .order_by(DeviceEvent.id)
        ).scalars()
    )


def _event_count(uid: str, kind: str) -> int:
    return len(_events(uid, kind))


def _assert_status_events_form_one_chain(uid: str) -> None:
    """Each event starts where the previous ended, and the last ends where the device is."""
    current = "connected"
    for event in _events(uid, "status"):
        assert event.from_status == current, f"{uid}: lost update before event {event.id}"
        assert event.to_status != event.from_status
        current = event.to_status
    device = device_state.get_device(uid)
    assert device.status == current


def test_racing_heartbeats_of_one_device_take_one_telemetry_sample(app, make_device):
    # Thresholds of its own keep the device off the one-statement path, on the
    # planner's: a connected device with nothing to change but a sample due.
    old = utcnow() - timedelta(hours=1)
    token = make_device("kiosk-1", heartbeat_interval_seconds=30, telemetry_sampled_at=old).token
    errors: list[BaseException] = []
    start = threading.Barrier(HEARTBEAT_THREADS, timeout=20)

    def beat() -> None:
        start.wait()
        heartbeats.accept_heartbeat(
            hash_token(token), heartbeats.Telemetry(battery_level=50), utcnow()
        )

    threads = [run_in_context(app, errors, beat) for _ in range(HEARTBEAT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    samples = db.session.execute(select(func.count()).select_from(TelemetrySample)).scalar_one()
    assert samples == 1
