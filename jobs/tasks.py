"""RQ jobs. A job takes plain ids or nothing, calls one service, logs one result line."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, has_app_context

from fleet.services import bulk
from fleet.services.alerts.service import run_alerts
from fleet.services.availability import rebuild
from fleet.services.sweep import run_sweep
from fleet.timeutil import utcnow
from jobs.bulk import resume_stalled

_app: Flask | None = None


def _job_app() -> Flask:
    """The app to run a job in: the worker's own when it has one, else one made once."""
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from fleet import create_app

        _app = create_app()
    return _app


def sweep_timeouts() -> dict[str, Any]:
    """The scheduled timeout sweep; skipped (not failed) when another sweep holds the lock."""
    app = _job_app()
    with app.app_context():
        report = run_sweep(utcnow(), runner="rq")
    # Bulk runs whose worker died mid-run go back on the queue.
    resume_stalled(app)
    return report.summary()


def run_bulk_action(action_id: int) -> dict[str, Any]:
    """A bulk action too large for its request, run (or resumed) to its end."""
    app = _job_app()
    with app.app_context():
        action = bulk.run_bulk_action(action_id, utcnow())
        return {"action": action.id, "done": action.done, "state": action.state}


def prune_history() -> dict[str, Any]:
    """Raw events, rollups and outages past their retention, deleted in batches."""
    app = _job_app()
    with app.app_context():
        return rebuild.prune_history(utcnow()).summary()


def deliver_alerts() -> dict[str, Any]:
    """The alerts' round: due incidents and reminders, then every notification that is due."""
    app = _job_app()
    with app.app_context():
        return run_alerts(utcnow())
