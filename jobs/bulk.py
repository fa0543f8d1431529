"""Bulk actions too large for a request: an RQ job with Redis, a thread of this process without."""

from __future__ import annotations

import threading

import structlog
from flask import Flask

from fleet.services import bulk
from fleet.services.locks import redis_client
from fleet.timeutil import utcnow
from jobs import QUEUE

log = structlog.get_logger("pulseboard.bulk")


def start_in_background(app: Flask, action_id: int) -> None:
    """Run the bulk action elsewhere than in the request; its progress is in the database."""
    connection = redis_client()
    if connection is not None:
        from rq import Queue  # only an installation with Redis needs RQ

        Queue(QUEUE, connection=connection).enqueue("jobs.tasks.run_bulk_action", action_id)
        return
    thread = threading.Thread(
        target=run_in_app, args=(app, action_id), name=f"pulseboard-bulk-{action_id}", daemon=True
    )
    thread.start()


def run_in_app(app: Flask, action_id: int) -> None:
    """Run the action to its end in `app`'s context; an error is logged, the run resumable."""
    try:
        with app.app_context():
            action = bulk.run_bulk_action(action_id, utcnow())
            log.info("bulk_action_done", action=action_id, devices=action.done)
    except Exception:
        # The progress so far is committed; a stalled run is resumed by the next sweep.
        log.exception("bulk_action_failed", action=action_id)


def resume_stalled(app: Flask) -> int:
    """Resume the running actions whose runner stopped making progress; how many.

    Two processes resuming one action do no harm: each chunk is claimed by
    compare-and-set, and the loser stops.
    """
    with app.app_context():
        stalled = bulk.stalled_bulk_actions(utcnow())
        for action_id in stalled:
            log.warning("bulk_action_resumed", action=action_id)
            start_in_background(app, action_id)
    return len(stalled)
