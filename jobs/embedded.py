"""The in-process loops for the embedded default (no Redis): the sweep, pruning, the delivery.

They start with the first request a server process handles, so `flask run`
alone gives a working system. Several processes may each run them: the
database lease in `run_sweep` lets one sweep at a time and the others record a
skip, and each notification is claimed by compare-and-set before it is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from flask import Flask

from fleet.timeutil import utcnow

log = structlog.get_logger("pulseboard.sweeper")


class EmbeddedLoop:
    """A daemon thread that calls `work(now)` in the app's context every `interval` seconds."""

    def __init__(
        self, app: Flask, name: str, interval: float, work: Callable[[datetime], Any]
    ) -> None:
        self.app = app
        self.name = name
        self.interval = interval
        self.work = work
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"pulseboard-{name}", daemon=True)

    def start(self) -> None:
        log.info(f"embedded_{self.name}_started", interval_seconds=self.interval)
        self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.thread.join(timeout)

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            self.run_once()

    def run_once(self) -> None:
        """One round; an error is logged and the loop goes on."""
        try:
            with self.app.app_context():
                self.work(utcnow())
        except Exception:
            log.exception(f"embedded_{self.name}_failed")


def sweeper(app: Flask) -> EmbeddedLoop:
    """The timeout sweep every SWEEP_INTERVAL_SECONDS, and any bulk run whose runner died."""
    # The loops' work is imported when a server's first request starts them, not
    # by every process that builds the app (a `flask` command needs none of it).
    from fleet.services.sweep import run_sweep
    from jobs.bulk import resume_stalled

    def sweep(now: datetime) -> None:
        run_sweep(now, runner="embedded")
        resume_stalled(app)

    return EmbeddedLoop(app, "sweep", app.config["SWEEP_INTERVAL_SECONDS"], sweep)


def delivery(app: Flask) -> EmbeddedLoop:
    """The alerts' round (due incidents, reminders, the outbox) every few seconds."""
    from fleet.services.alerts.service import run_alerts

    return EmbeddedLoop(app, "delivery", app.config["ALERT_DELIVERY_INTERVAL_SECONDS"], run_alerts)


def pruner(app: Flask) -> EmbeddedLoop:
    """Old events, rollups and outages pruned every PRUNE_INTERVAL_SECONDS."""
    from fleet.services.availability.rebuild import prune_history

    return EmbeddedLoop(app, "prune", app.config["PRUNE_INTERVAL_SECONDS"], prune_history)


LOOPS = {
    "pulseboard_sweeper": sweeper,
    "pulseboard_pruner": pruner,
    "pulseboard_delivery": delivery,
}


def install(app: Flask) -> None:
    """Start the loops with the first request, once per process."""
    if not app.config["EMBEDDED_SWEEPER"]:
        return
    start_lock = threading.Lock()

    @app.before_request
    def start_loops_once() -> None:
        if "pulseboard_delivery" in app.extensions:
            return
        with start_lock:
            for key, make in LOOPS.items():
                if key not in app.extensions:
                    loop = make(app)
                    app.extensions[key] = loop
                    loop.start()


def stop_all(app: Flask) -> None:
    """Stop whichever loops this app started."""
    for key in LOOPS:
        loop = app.extensions.get(key)
        if loop is not None:
            loop.stop()
