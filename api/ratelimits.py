"""Per-device heartbeat limits and per-address credential limits, on the `limits` library.

Flask-Limiter keeps the limits of the other routes. The heartbeat checks its
own with the library underneath, against the same storage: Flask-Limiter's
decorator re-resolves, filters and sorts every route's limits on every request,
which cost a heartbeat more than the Redis round trip it guards (measured with
bench/heartbeat.py; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import math
import threading
import time
from functools import lru_cache

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from api import HEARTBEAT_ENDPOINT
from fleet.context import current_application
from fleet.errors import FleetError
from fleet.extensions import limiter

log = structlog.get_logger("pulseboard.ratelimits")

# While the shared storage (Redis) is unreachable, limits live in this process's
# memory and the storage is tried again after this long.
STORAGE_RETRY_SECONDS = 10.0


class RateLimited(FleetError):
    code = "rate_limited"
    http_status = 429


class _Storage:
    """Flask-Limiter's storage, with this process's memory standing in while it is down.

    While the storage is down one request at a time tries it again, every
    STORAGE_RETRY_SECONDS; the others count in memory meanwhile.
    """

    def __init__(self, shared: Storage) -> None:
        self.shared = FixedWindowRateLimiter(shared)
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.down_until = 0.0
        self._probe_lock = threading.Lock()

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
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
            if time.monotonic() < self.down_until:
                return False
            # This request probes the storage; the others stay in memory until it answers.
            self.down_until = time.monotonic() + STORAGE_RETRY_SECONDS
            return True

    def _mark_down(self, error: Exception) -> None:
        log.warning(
            "rate_limit_storage_unreachable",
            error=type(error).__name__,
            retry_in_seconds=STORAGE_RETRY_SECONDS,
        )
        self.down_until = time.monotonic() + STORAGE_RETRY_SECONDS


def storage() -> _Storage:
    """This app's limit storage (made on first use, once Flask-Limiter has its storage)."""
    extensions = current_application().extensions
    found = extensions.get(_STORAGE_KEY)
    if found is None:
        with _creation_lock:
            found = extensions.get(_STORAGE_KEY)
            if found is None:
                found = extensions[_STORAGE_KEY] = _Storage(limiter.storage)
    return found


_STORAGE_KEY = "pulseboard.ratelimits"
_creation_lock = threading.Lock()


# Flask-Limiter's own hook has nothing to check here.
limiter.self_limited_endpoints.add(HEARTBEAT_ENDPOINT)


@lru_cache(maxsize=16)
def heartbeat_limits(min_interval_seconds: int, max_per_minute: int) -> tuple[RateLimitItem, ...]:
    """A device's limits: a minimum interval and a cap per minute, the cap left out when implied.

    A fixed window opens with its first hit, so heartbeats the interval lets
    through are at least `min_interval_seconds` apart: no minute can hold more
    than `60 // min_interval_seconds + 1` of them. When that is within the cap,
    checking the cap too would only cost a second storage round trip.
    """
    cap = RateLimitItemPerMinute(max_per_minute)
    if min_interval_seconds <= 0:
        return (cap,)
    interval = RateLimitItemPerSecond(1, min_interval_seconds)
    if 60 // min_interval_seconds + 1 <= max_per_minute:
        return (interval,)
    return (interval, cap)


def check_heartbeat_limits(token_hash: str) -> None:
    """Count one heartbeat against its device's limits; RateLimited once it is over one.

    The limits follow the token, whichever address it comes from, and need no
    database lookup first: a token that matches no device only limits itself.
    """
    if not limiter.enabled:
        return
    config = current_application().config
    limits = heartbeat_limits(
        config["HEARTBEAT_MIN_INTERVAL_SECONDS"], config["HEARTBEAT_MAX_PER_MINUTE"]
    )
    device_key = f"device:{token_hash}"
    counted = storage()
    for item in limits:
        if not counted.hit(item, "heartbeat", device_key):
            raise over_limit(item, "heartbeat", device_key)


def over_limit(item: RateLimitItem, *identifiers: str, message: str | None = None) -> RateLimited:
    """The 429 for a breached limit, telling the client when to retry."""
    retry_after = storage().seconds_until_reset(item, *identifiers)
    return RateLimited(
        message or f"rate limit exceeded ({item}); retry later",
        {"limit": str(item), "retry_after_seconds": retry_after},
    )
