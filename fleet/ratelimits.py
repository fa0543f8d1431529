"""The API's rate limits: per-device heartbeat limits and one failed-credentials budget per address.

Both are counted with the `limits` library on one `LimitStorage` per app
(made in the factory, shared by the main app and the device app), so a client
address has one allowance for failed credentials whichever endpoint it fails
on: enrolment, heartbeat or admin API.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from flask import Flask
from limits import (
    RateLimitItem,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)

from fleet.context import current_application
from fleet.errors import FleetError
from fleet.limit_storage import LimitStorage

EXTENSION_KEY = "pulseboard.limits"
GUARD_KEY = "pulseboard.flood_guard"
# Token hashes remembered as good, per process; the memory starts over when full.
GOOD_TOKENS_KEPT = 100_000


class RateLimited(FleetError):
    code = "rate_limited"
    http_status = 429


class FloodGuard:
    """What this process knows of addresses over their allowance, and of tokens that are good.

    Dictionary look-ups only, no storage round trip: for refusing, before any
    database work, what is sure to be refused.
    """

    def __init__(self) -> None:
        self._over_until: dict[str, float] = {}
        self._good_tokens: set[str] = set()

    def remember_over(self, address: str, seconds: int) -> None:
        now = time.time()
        if len(self._over_until) >= GOOD_TOKENS_KEPT:
            self._over_until = {key: t for key, t in self._over_until.items() if t > now}
        self._over_until[address] = now + seconds

    def seconds_over(self, address: str) -> int:
        """Whole seconds `address` is still known to be over its allowance; 0 if not known so."""
        until = self._over_until.get(address)
        if until is None:
            return 0
        left = until - time.time()
        if left <= 0:
            self._over_until.pop(address, None)
            return 0
        return math.ceil(left)

    def remember_good(self, token_hash: str) -> None:
        if len(self._good_tokens) >= GOOD_TOKENS_KEPT:
            self._good_tokens.clear()
        self._good_tokens.add(token_hash)

    def is_good(self, token_hash: str) -> bool:
        return token_hash in self._good_tokens


def install(app: Flask, storage: LimitStorage, guard: FloodGuard) -> None:
    """Count `app`'s limits in `storage`; what is known of floods in `guard`."""
    app.extensions[EXTENSION_KEY] = storage
    app.extensions[GUARD_KEY] = guard


def storage_for(config: dict) -> LimitStorage:
    """A limit storage on the configured URI (Redis in production)."""
    return LimitStorage(config["RATELIMIT_STORAGE_URI"], config.get("RATELIMIT_STORAGE_OPTIONS"))


def storage() -> LimitStorage:
    """The storage of the app being served."""
    return current_application().extensions[EXTENSION_KEY]


def enabled() -> bool:
    return current_application().config["RATELIMIT_ENABLED"]


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


def check_heartbeat_limits(app: Flask, token_hash: str) -> None:
    """Count one heartbeat against its device's limits; RateLimited once it is over one.

    The limits follow the token, whichever address it comes from, and need no
    database lookup first: a token that matches no device only limits itself.
    `app` is the app being served, passed in: the heartbeat reads it once.
    """
    config = app.config
    if not config["RATELIMIT_ENABLED"]:
        return
    limits = heartbeat_limits(
        config["HEARTBEAT_MIN_INTERVAL_SECONDS"], config["HEARTBEAT_MAX_PER_MINUTE"]
    )
    device_key = f"device:{token_hash}"
    counted: LimitStorage = app.extensions[EXTENSION_KEY]
    for item in limits:
        if not counted.hit(item, "heartbeat", device_key):
            raise over_limit(item, "heartbeat", device_key)


@lru_cache(maxsize=16)
def _credentials_allowance(per_minute: int) -> RateLimitItem:
    return RateLimitItemPerMinute(per_minute)


def count_enrolment(address: str | None, uid: str) -> None:
    """Count one enrolment with the right key; RateLimited past the caps.

    Caps per client address a minute (a script minting devices) and per uid an
    hour (a device enrolled again and again: an attempt to take it over, or a
    kiosk in a boot loop).
    """
    if not enabled():
        return
    config = current_application().config
    caps = (
        (RateLimitItemPerMinute(config["ENROLL_MAX_PER_MINUTE"]), "enrol-address", address),
        (RateLimitItemPerHour(config["REENROLL_MAX_PER_HOUR"]), "enrol-uid", uid),
    )
    for item, scope, key in caps:
        if not storage().hit(item, scope, key or "unknown"):
            raise over_limit(item, scope, key or "unknown", message=f"too many enrolments ({item})")


OVER_CREDENTIALS_MESSAGE = "too many failed credentials from this address; retry later"


def count_failed_credentials(address: str | None) -> None:
    """Count one failed credential against `address`; RateLimited once it is over its allowance.

    Only failures are counted, so valid devices behind the same address (a
    whole site behind one NAT) are never held back by a misconfigured one.
    """
    if not enabled():
        return
    allowance = _credentials_allowance(current_application().config["BAD_TOKEN_MAX_PER_MINUTE"])
    key = address or "unknown"
    if not storage().hit(allowance, "bad-credentials", key):
        refusal = over_limit(allowance, "bad-credentials", key, message=OVER_CREDENTIALS_MESSAGE)
        guard().remember_over(key, refusal.details["retry_after_seconds"])
        raise refusal


def guard(app: Flask | None = None) -> FloodGuard:
    """The flood guard of `app` (the heartbeat passes the app it read), else of the app served."""
    return (app or current_application()).extensions[GUARD_KEY]


def refuse_a_flooding_address(app: Flask, address: str | None, token_hash: str) -> None:
    """RateLimited, before any database work, for an unknown token from a flooding address.

    An address sending token after unknown token would otherwise cost a token
    look-up in the database each time. Known here once this process has
    refused it, until its window ends. Tokens this process has seen accepted
    pass on as usual, so the devices behind that address keep beating.
    """
    # The caller's app, not a look-up through the proxy: this runs on every heartbeat.
    if not app.config["RATELIMIT_ENABLED"]:
        return
    current: FloodGuard = app.extensions[GUARD_KEY]
    seconds = current.seconds_over(address or "unknown")
    if seconds and not current.is_good(token_hash):
        allowance = _credentials_allowance(app.config["BAD_TOKEN_MAX_PER_MINUTE"])
        details = {"limit": str(allowance), "retry_after_seconds": seconds}
        raise RateLimited(OVER_CREDENTIALS_MESSAGE, details)


def over_limit(item: RateLimitItem, *identifiers: str, message: str | None = None) -> RateLimited:
    """The 429 for a breached limit, telling the client when to retry."""
    retry_after = storage().seconds_until_reset(item, *identifiers)
    return RateLimited(
        message or f"rate limit exceeded ({item}); retry later",
        {"limit": str(item), "retry_after_seconds": retry_after},
    )
