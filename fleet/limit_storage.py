"""Where rate limits are counted: the shared storage (Redis), with memory standing in.

`limits`' own memory storage expires keys from a timer thread that reads them
without the lock the request threads take, and raises KeyError under load (a
known `limits` issue). `LockedMemoryStorage` is a storage backend registered
through `limits`' documented registry (`pulseboard-memory://`): fixed windows
only, every read and write under one lock, expired keys dropped on access.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from limits import RateLimitItem
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = structlog.get_logger("pulseboard.ratelimits")

# While the shared storage (Redis) is unreachable, limits live in this process's
# memory and the storage is tried again after this long.
STORAGE_RETRY_SECONDS = 10.0
# Past this many keys, an increment sweeps out the expired ones first.
PURGE_AT_KEYS = 10_000


class LockedMemoryStorage(Storage):
    """Fixed-window counters in this process's memory, safe under threads."""

    STORAGE_SCHEME = ["pulseboard-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._expiries: dict[str, float] = {}
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            if len(self._counts) >= PURGE_AT_KEYS:
                self._purge(now)
            if self._expiries.get(key, 0.0) <= now:
                self._counts[key] = 0
                self._expiries[key] = now + expiry
            self._counts[key] += amount
            return self._counts[key]

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0) if self._expiries.get(key, 0.0) > time.time() else 0

    def get_expiry(self, key: str) -> float:
        with self._lock:
            return self._expiries.get(key, time.time())

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            count = len(self._counts)
            self._counts.clear()
            self._expiries.clear()
        return count

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)
            self._expiries.pop(key, None)

    def _purge(self, now: float) -> None:
        expired = [key for key, expires in self._expiries.items() if expires <= now]
        for key in expired:
            del self._counts[key], self._expiries[key]


class LimitStorage:
    """Fixed-window limits on the shared storage, counted in memory while it is down.

    While the storage is down one request at a time tries it again, every
    STORAGE_RETRY_SECONDS; the others count in memory meanwhile.
    """

    def __init__(
        self,
        uri: str,
        options: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.shared = FixedWindowRateLimiter(storage_from_string(uri, **(options or {})))
        self.memory = FixedWindowRateLimiter(LockedMemoryStorage())
        self.down_until = 0.0
        self._probe_lock = threading.Lock()

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one against `item`; False when that goes over it."""
        if self._use_shared():
            try:
                allowed = self.shared.hit(item, *identifiers)
            except Exception as error:  # limits lets the storage driver's own errors through
                self._mark_down(error)
            else:
                self.down_until = 0.0
                return allowed
        return self.memory.hit(item, *identifiers)

    def seconds_until_reset(self, item: RateLimitItem, *identifiers: str) -> int:
        """Whole seconds until the window resets, rounded up, never less than one."""
        strategy = self.memory if self.down_until else self.shared
        try:
            reset_at = strategy.get_window_stats(item, *identifiers).reset_time
        except Exception:  # the storage went away between the hit and now
            return math.ceil(item.get_expiry())
        # Redis reports a key's time to live rounded to the nearest second: the
        # half second keeps the answer at or above the true wait.
        return max(1, math.ceil(reset_at - time.time() + 0.5))

    def _use_shared(self) -> bool:
        if not self.down_until:
            return True
        with self._probe_lock:
            if self.clock() < self.down_until:
                return False
            # This request probes the storage; the others stay in memory until it answers.
            self.down_until = self.clock() + STORAGE_RETRY_SECONDS
            return True

    def _mark_down(self, error: Exception) -> None:
        log.warning(
            "rate_limit_storage_unreachable",
            error=type(error).__name__,
            retry_in_seconds=STORAGE_RETRY_SECONDS,
        )
        self.down_until = self.clock() + STORAGE_RETRY_SECONDS
