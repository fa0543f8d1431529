"""The schedule read by RQ's cron scheduler: `flask jobs cron`.

The one list of periodic jobs. Intervals come from the same environment the web
tier reads, so the sweep runs every SWEEP_INTERVAL_SECONDS and the alerts' delivery
round every ALERT_DELIVERY_INTERVAL_SECONDS.
"""

import os

from rq import cron

from fleet.config import Settings
from jobs import QUEUE
from jobs.tasks import deliver_alerts, prune_history, sweep_timeouts

settings = Settings.read(os.environ)

cron.register(
    sweep_timeouts,
    queue_name=QUEUE,
    interval=settings.sweep_interval_seconds,
    # A stuck job is ended here; its lock, renewed only as chunks complete,
    # has lapsed long before (within one SWEEP_INTERVAL_SECONDS).
    job_timeout=240,
    result_ttl=3600,
    name="timeout-sweep",
)

cron.register(
    deliver_alerts,
    queue_name=QUEUE,
    interval=settings.alert_delivery_interval_seconds,
    # Under ALERT_CLAIM_TIMEOUT_SECONDS (120 s), after which another worker takes a claim over.
    job_timeout=100,
    result_ttl=600,
    name="alert-delivery",
)

cron.register(
    prune_history,
    queue_name=QUEUE,
    interval=settings.prune_interval_seconds,
    job_timeout=600,
    result_ttl=86_400,
    name="history-pruning",
)
