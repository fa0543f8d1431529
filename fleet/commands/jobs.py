"""`flask jobs ...`: the RQ worker, started with the app's config and context."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from fleet.services.locks import redis_client
from jobs import QUEUE

jobs_cli = AppGroup("jobs", help="Background workers (needs REDIS_URL).")


@jobs_cli.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker on the Pulseboard queue."""
    connection = redis_client()
    if connection is None:
        raise click.ClickException(
            "REDIS_URL is not set: without Redis the sweep runs inside the web server."
        )
    from rq import Queue, Worker  # only this command needs RQ

    worker = Worker([Queue(QUEUE, connection=connection)], connection=connection)
    worker.work(burst=burst, with_scheduler=False)
