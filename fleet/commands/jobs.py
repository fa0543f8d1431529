"""`flask jobs ...`: the RQ worker and the cron scheduler, with the app's config and context.

Both ride out a Redis outage (jobs/resilient.py), so a supervisor need not
restart them when Redis goes away for a while.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import click
from flask.cli import AppGroup

from fleet.services.locks import redis_client
from jobs import QUEUE

if TYPE_CHECKING:
    from redis import Redis

jobs_cli = AppGroup("jobs", help="Background workers (needs REDIS_URL).")


def _redis() -> Redis:
    connection = redis_client()
    if connection is None:
        raise click.ClickException(
            "REDIS_URL is not set: without Redis the sweep runs inside the web server."
        )
    return connection


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker on the Pulseboard queue."""
    from jobs import resilient  # only these commands need RQ

    resilient.run_worker(_redis(), QUEUE, burst=burst)


@jobs_cli.command("cron")
def cron_command() -> None:
    """Enqueue the periodic jobs of jobs/cron.py on schedule (run exactly one per installation)."""
    from jobs import resilient

    stopping = threading.Event()
    resilient.stop_on_signals(stopping)
    resilient.run_cron(_redis(), stopping)
