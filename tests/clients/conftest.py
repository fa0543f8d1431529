"""A live server for the simulator: the app on this test's database, served on a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from clients.sim_device import SimDevice
from clients.simulator import Settings, Simulator
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.conftest import ENROLLMENT_KEY
from tests.servers import free_port

# Thresholds in whole seconds (the least the config allows), so a behaviour shows in seconds.
FAST = {
    "HEARTBEAT_INTERVAL_SECONDS": 1,
    "GRACE_PERIOD_SECONDS": 1,
    "DISCONNECT_AFTER_SECONDS": 4,
    "HEARTBEAT_MIN_INTERVAL_SECONDS": 0,
    "HEARTBEAT_MAX_PER_MINUTE": 10_000,
    "RECONNECT_DELAY_SECONDS": 0,
    "FLAP_WINDOW_SECONDS": 600,
}


@dataclass
class LiveServer:
    app: Flask
    url: str
    server: BaseWSGIServer

    def context(self) -> AbstractContextManager:
        """A fresh app context: a new session that sees everything committed so far."""
        return self.app.app_context()

    def sweep(self) -> None:
        """One timeout sweep, as the embedded sweeper or the cron job would run it."""
        with self.context():
            enforce_timeouts(utcnow())

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def live_server(make_app: Callable[..., Flask]) -> Iterator[Callable[..., LiveServer]]:
    """Start the app in a thread on a free (or the given) port."""
    started: list[LiveServer] = []

    def serve(port: int | None = None, **overrides: Any) -> LiveServer:
        app = make_app(**{**FAST, **overrides})
        port = port or free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        live = LiveServer(app, f"http://127.0.0.1:{port}", server)
        started.append(live)
        live.start()
        return live

    yield serve
    for live in started:
        live.server.shutdown()
        live.server.server_close()


@pytest.fixture
def run_simulator() -> Iterator[Callable[..., Simulator]]:
    """Run a simulator in a thread against a server; stopped and joined after the test."""
    running: list[tuple[Simulator, threading.Thread]] = []

    def run(url: str, **settings: Any) -> Simulator:
        settings = {"enrollment_key": ENROLLMENT_KEY, "seed": 7, "workers": 4, **settings}
        simulator = Simulator(Settings(server=url, **settings))
        thread = threading.Thread(target=simulator.run, daemon=True)
        thread.start()
        running.append((simulator, thread))
        return simulator

    yield run
    for simulator, thread in running:
        simulator.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the simulator did not stop"


def wait_for(condition: Callable[[], Any], timeout: float, every: float = 0.1, sweep=None) -> Any:
    """Poll `condition` (running `sweep` first each time) until it is truthy; fail on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if sweep is not None:
            sweep()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(every)


def device_of(simulator: Simulator, behaviour: str) -> SimDevice:
    return next(device for device in simulator.devices if device.behaviour.name == behaviour)
