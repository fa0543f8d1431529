"""Background work: RQ jobs, the cron schedule (jobs/cron.py) and the embedded sweeper."""

QUEUE = "pulseboard"
