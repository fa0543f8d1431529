"""gunicorn settings for Pulseboard: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be overridden on the command line or with the environment
variables below. Metrics run in prometheus-client's multiprocess mode, so a
scrape of any worker reports the sums over all of this machine's workers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_cores = os.cpu_count() or 1
# Without Redis the rate limits live in each process's memory, so several
# processes would each grant a device its whole limit: one process, more threads.
_default_workers = 2 * _cores + 1 if os.environ.get("REDIS_URL") else 1

bind = os.environ.get("PULSEBOARD_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", _default_workers))
worker_class = "gthread"
# A heartbeat is one short transaction; threads cover the time spent waiting on the database.
threads = int(os.environ.get("GUNICORN_THREADS", "4" if workers > 1 else "8"))
timeout = 30
# gunicorn's largest request line: the longest URL the OpenAPI document allows
# (a 200-character search and site, percent-encoded UTF-8) fits, where the
# default of 4094 bytes answered 414.
limit_request_line = 8190
graceful_timeout = 30
keepalive = 5
# Files written on every request belong in memory, not on a disk-backed /tmp
# (Debian 12's): gunicorn touches its worker heartbeat file on every turn of a
# worker's loop (its docs warn this can block a worker on disk), and the metrics
# below are memory-mapped files. On disk the kernel journals and writes them back
# all the time, in kernel CPU that every heartbeat pays (docs/benchmarks.md).
_memory_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
worker_tmp_dir = _memory_dir
# The app writes one structured access line per request (fleet/logs.py).
accesslog = None
errorlog = "-"

# prometheus-client picks its storage when first imported, so the directory must
# be in the environment before any worker imports the app.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(
        Path(_memory_dir or tempfile.gettempdir()) / f"pulseboard-metrics-{bind.replace(':', '-')}"
    ),
)


def on_starting(server: object) -> None:
    """Start from an empty metrics directory: files left by a previous run would be summed in."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges; its counters stay, as Prometheus expects."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
