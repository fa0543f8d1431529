"""The schedule read by RQ's cron scheduler: `flask jobs cron`.

The one list of periodic jobs. Intervals come from the same environment the web
tier reads, so the sweep runs every SWEEP_INTERVAL_SECONDS.
"""

import os

from rq import cron

from fleet.config import env_int
from jobs import QUEUE
from jobs.tasks import sweep_timeouts

cron.register(
    sweep_timeouts,
    queue_name=QUEUE,
    interval=env_int(os.environ, "SWEEP_INTERVAL_SECONDS", 60, minimum=1),
    # A stuck job is ended here; its lock, renewed only as chunks complete,
    # has lapsed long before (within one SWEEP_INTERVAL_SECONDS).
    job_timeout=240,
    result_ttl=3600,
    name="timeout-sweep",
)
