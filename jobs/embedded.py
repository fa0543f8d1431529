"""The in-process sweeper for the embedded default (no Redis).

It starts with the first request a server process handles, so `flask run` alone
gives a working system. Several processes may each run one: the database lease
in `run_sweep` lets one sweep at a time and the others record a skip.
"""

from __future__ import annotations

import threading

import structlog
from flask import Flask

from fleet.services.sweep import run_sweep
from fleet.timeutil import utcnow

log = structlog.get_logger("pulseboard.sweeper")


class EmbeddedSweeper:
    """A daemon thread that runs the timeout sweep every SWEEP_INTERVAL_SECONDS."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = app.config["SWEEP_INTERVAL_SECONDS"]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="pulseboard-sweeper", daemon=True)

    def start(self) -> None:
        log.info("embedded_sweeper_started", interval_seconds=self.interval)
        self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.thread.join(timeout)

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            self.sweep_once()

    def sweep_once(self) -> None:
        """One sweep; an error is logged and the loop goes on."""
        try:
            with self.app.app_context():
                run_sweep(utcnow(), runner="embedded")
        except Exception:
            log.exception("embedded_sweep_failed")


def install(app: Flask) -> None:
    """Start the sweeper with the first request, once per process."""
    if not app.config["EMBEDDED_SWEEPER"]:
        return
    start_lock = threading.Lock()

    @app.before_request
    def start_sweeper_once() -> None:
        if "pulseboard_sweeper" in app.extensions:
            return
        with start_lock:
            if "pulseboard_sweeper" not in app.extensions:
                sweeper = EmbeddedSweeper(app)
                app.extensions["pulseboard_sweeper"] = sweeper
                sweeper.start()
