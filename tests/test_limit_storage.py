"""Where limits are counted: the thread-safe memory storage and the shared storage's fallback."""

import threading

import time_machine
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond

from fleet.limit_storage import STORAGE_RETRY_SECONDS, LimitStorage, LockedMemoryStorage
from tests import servers
from tests.conftest import unavailable


def test_it_counts_every_hit_from_many_threads_exactly():
    storage = LimitStorage("pulseboard-memory://")
    cap = RateLimitItemPerMinute(500)
    allowed: list[bool] = []
    errors: list[BaseException] = []

    def hit_many(thread: int) -> None:
        try:
            for n in range(100):
                allowed.append(storage.hit(cap, "device", f"{thread}-{n % 7}"))
                allowed.append(storage.hit(cap, "shared"))
        except BaseException as error:  # a KeyError here was the bug this storage fixes
            errors.append(error)

    threads = [threading.Thread(target=hit_many, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert allowed.count(False) == 8 * 100 - 500  # the shared key went over at its 501st hit


def test_a_window_ends_on_time_and_counts_again_from_one():
    storage = LockedMemoryStorage()
    with time_machine.travel(0, tick=False) as clock:
        assert [storage.incr("key", 10) for _ in range(3)] == [1, 2, 3]
        clock.shift(9.9)
        assert storage.get("key") == 3
        clock.shift(0.2)
        assert storage.get("key") == 0
        assert storage.incr("key", 10) == 1


def test_it_drops_expired_keys_once_it_holds_many(monkeypatch):
    monkeypatch.setattr("fleet.limit_storage.PURGE_AT_KEYS", 10)
    storage = LockedMemoryStorage()
    with time_machine.travel(0, tick=False) as clock:
        for n in range(10):
            storage.incr(f"old-{n}", 1)
        clock.shift(2)
        storage.incr("new", 1)
    assert storage.reset() == 1


def test_it_counts_in_memory_while_redis_is_down_and_returns_to_it():
    try:
        redis = servers.start_redis()
    except servers.ServerUnavailable:
        unavailable("redis-server is not installed")
    port = redis.port
    now = [1000.0]
    options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    storage = LimitStorage(redis.url, options, clock=lambda: now[0])
    interval = RateLimitItemPerSecond(1, 30)
    try:
        assert storage.hit(interval, "heartbeat", "a")
        redis.stop()
        # Down: counted in memory, still enforced.
        assert [storage.hit(interval, "heartbeat", "b") for _ in range(2)] == [True, False]
        redis = servers.start_redis(port=port)
        # Still within the retry delay: memory goes on counting.
        assert not storage.hit(interval, "heartbeat", "b")
        now[0] += STORAGE_RETRY_SECONDS + 1
        # Back on the new Redis, which has not seen "b": its first hit there.
        assert storage.hit(interval, "heartbeat", "b")
        assert not storage.hit(interval, "heartbeat", "b")
    finally:
        redis.stop()
