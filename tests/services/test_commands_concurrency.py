"""Commands requested while heartbeats race on the same device: each delivered exactly once.

On PostgreSQL the heartbeats really interleave (row locks, the compare-and-set
on the revision and on the command's state); on SQLite they serialise.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from sqlalchemy import select

from fleet.errors import Contention
from fleet.extensions import db
from fleet.models import DeviceCommand
from fleet.services import commands, heartbeats
from fleet.timeutil import utcnow
from fleet.tokens import hash_token
from tests.services.test_concurrency import run_together

HEARTBEAT_THREADS = 6
ROUNDS = 4
KINDS = ("restart_app", "reboot", "refresh_content", "screenshot", "reconnect")


def test_each_command_reaches_exactly_one_racing_heartbeat_and_is_acked(app, make_device):
    token_hash = hash_token(make_device("kiosk-1").token)
    deliveries: Counter[int] = Counter()
    reconnects = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def send_heartbeats(seed: int) -> None:
        rng = random.Random(seed)
        owed: list[commands.Ack] = []
        while not stop.is_set() or owed:
            # Half the time the ack waits a beat, so acks race deliveries too.
            acks, owed = (owed, []) if rng.random() < 0.5 else ([], owed)
            try:
                result = heartbeats.accept_heartbeat(
                    token_hash, heartbeats.Telemetry(), utcnow(), acks=acks
                )
            except Contention:
                # Six heartbeats at once from one device can lose every race:
                # the 503 tells it to retry, and its acks go again.
                owed += acks
                continue
            with lock:
                deliveries.update(command.id for command in result.commands)
                reconnects["delivered"] += result.should_reconnect
            owed += [commands.Ack(command.id, "ok") for command in result.commands]

    def request_commands() -> None:
        for _ in range(ROUNDS):
            for kind in KINDS:
                requested = commands.request_command("kiosk-1", kind, {}, "ops", utcnow())
                _wait_until_delivered(requested.command.id)
        stop.set()

    workers = [lambda seed=seed: send_heartbeats(seed) for seed in range(HEARTBEAT_THREADS)]
    run_together(app, [*workers, request_commands], stop, errors)
    stored = db.session.scalars(select(DeviceCommand)).all()
    assert len(stored) == ROUNDS * len(KINDS)
    assert {command.id: deliveries[command.id] for command in stored} == {
        command.id: 1 for command in stored
    }
    assert {command.state for command in stored} == {"ok"}
    assert reconnects["delivered"] == ROUNDS


def _wait_until_delivered(command_id: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = db.session.scalar(select(DeviceCommand.state).where(DeviceCommand.id == command_id))
        db.session.rollback()
        if state != "pending":
            return
        time.sleep(0.002)
    raise AssertionError(f"command {command_id} never delivered")
