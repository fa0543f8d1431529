"""RQ's cron scheduler and worker, kept running through a Redis outage.

`rq cron` exits on the first Redis error (its loop handles none), and an RQ
worker quits on a Redis timeout or an error outside its dequeue retry; after a
Redis restart, which loses every key, the worker is no longer listed either. Here
each runs through RQ's public API in a loop that waits for Redis with a capped
back-off and carries on (or starts a fresh worker) once it answers again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from types import FrameType

import structlog
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker, worker_registration
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

log = structlog.get_logger("pulseboard.jobs")

# Retry quickly at first, then every few seconds: the sweep is due every
# SWEEP_INTERVAL_SECONDS, so waiting longer than that for Redis costs a sweep.
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 5.0
CRON_CONFIG = "jobs/cron.py"


class Backoff:
    """Doubling waits between retries, capped, starting over after a success."""

    def __init__(self, first: float = FIRST_RETRY_SECONDS, cap: float = MAX_RETRY_SECONDS) -> None:
        self.first, self.cap = first, cap
        self.failures = 0

    def next_wait(self) -> float:
        wait = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return wait

    def reset(self) -> bool:
        """Start over; True when there were failures to forget (Redis is back)."""
        had_failures, self.failures = self.failures > 0, 0
        return had_failures


def stop_on_signals(stopping: threading.Event) -> None:
    """SIGTERM and SIGINT end the loop at its next wait, as `rq cron` ends on them."""

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def run_cron(connection: Redis, stopping: threading.Event, config: str = CRON_CONFIG) -> None:
    """Enqueue the jobs of `config` on schedule until `stopping` is set, whatever Redis does.

    The steps of RQ's `CronScheduler.start`, each pass guarded: a job whose
    enqueue failed is not marked enqueued, so it is enqueued once Redis is back;
    the heartbeat re-registers the scheduler if a Redis restart lost it.
    """
    scheduler = CronScheduler(connection=connection)
    scheduler.load_config_from_file(config)
    backoff = Backoff()
    born = False
    while not stopping.is_set():
        try:
            if not born:
                scheduler.register_birth()
                born = True
            if scheduler.enqueue_jobs():
                scheduler.save()
            scheduler.heartbeat()
            wait = scheduler.calculate_sleep_interval()
            if backoff.reset():
                log.info("cron_redis_back", scheduler=scheduler.name)
        except RedisError as error:
            wait = backoff.next_wait()
            log.warning("cron_redis_unavailable", error=str(error), retry_in_seconds=wait)
        stopping.wait(wait)
    with contextlib.suppress(RedisError):  # down at shutdown: the entry lapses by itself
        scheduler.register_death()


def run_worker(connection: Redis, queue: str, burst: bool = False) -> None:
    """Run RQ workers on `queue` one after another until one stops for a reason other than Redis.

    A worker that ends while Redis is unreachable (it quit on a timeout, or its
    teardown failed) is replaced by a fresh one once Redis answers again.
    """
    backoff = Backoff()
    while True:
        worker = Worker([Queue(queue, connection=connection)], connection=connection)
        # RQ's own retry while dequeuing doubles up to a minute between attempts;
        # the sweep is due more often than that.
        worker.max_connection_wait_time = MAX_RETRY_SECONDS
        keeper = _keep_registered(worker)
        try:
            worker.work(burst=burst, with_scheduler=False)
            if burst or _redis_answers(connection):
                return  # done, or asked to stop: RQ handles SIGTERM itself
        except RedisError as error:
            if burst:
                raise  # a one-off run reports the outage rather than waiting it out
            log.warning("worker_redis_unavailable", worker=worker.name, error=str(error))
        finally:
            keeper.set()
        try:
            _wait_for_redis(connection, backoff)
        except StopRequested:
            return  # SIGTERM while Redis was down: RQ's handler, still installed, raised it


def _keep_registered(worker: Worker, every: float = MAX_RETRY_SECONDS) -> threading.Event:
    """Re-list `worker` among the live workers when a Redis restart dropped it; set to stop.

    RQ lists a worker once, at birth; its heartbeat refreshes the worker's own
    key but not the list that `Worker.all` (and so `flask doctor`) reads.
    """
    done = threading.Event()

    def keep() -> None:
        while not done.wait(every):
            try:
                live = connection.exists(worker.key) and not connection.hexists(worker.key, "death")
                if live and not connection.sismember(worker.redis_workers_keys, worker.key):
                    worker_registration.register(worker)
                    log.info("worker_registered_again", worker=worker.name)
            except RedisError:
                continue  # still down: the worker itself waits for Redis

    connection = worker.connection
    threading.Thread(target=keep, name="pulseboard-worker-registration", daemon=True).start()
    return done


def _redis_answers(connection: Redis) -> bool:
    try:
        return bool(connection.ping())
    except RedisError:
        return False


def _wait_for_redis(connection: Redis, backoff: Backoff) -> None:
    while not _redis_answers(connection):
        wait = backoff.next_wait()
        log.warning("worker_waiting_for_redis", retry_in_seconds=wait)
        time.sleep(wait)
    backoff.reset()
    log.info("worker_redis_back")
