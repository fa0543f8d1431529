"""Named locks with an expiry: in Redis when configured, else a row in the database.

A holder that dies keeps the lock only until it expires, so a killed worker
never blocks sweeps for longer than the lock's TTL; a holder that lives renews
the lock as its work progresses (`Held.renew`), so the TTL can stay short.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import structlog
from flask import current_app
from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError

from fleet.extensions import db
from fleet.models import Lease
from fleet.timeutil import utcnow

if TYPE_CHECKING:
    from redis import Redis
    from redis.lock import Lock

log = structlog.get_logger("pulseboard.locks")


def redis_client() -> Redis | None:
    """The app's Redis client, or None on the embedded default."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return None
    client = current_app.extensions.get("pulseboard_redis")
    if client is None:
        # Imported here: the embedded default runs without Redis and its client library.
        from redis import Redis

        client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        current_app.extensions["pulseboard_redis"] = client
    return client


def holder_id() -> str:
    """Who holds a lock: host, process and thread, plus a nonce so reuse never collides."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(RuntimeError):
    """The lock lapsed and another holder may have it: the work under it must stop."""


class Held:
    """A lock taken (or not) by `held`: true when taken; `renew()` extends it by its TTL."""

    def __init__(self, name: str, ttl_seconds: int, renew: Callable[[], bool] | None) -> None:
        self.name = name
        self.ttl_seconds = ttl_seconds
        self._renew = renew

    def __bool__(self) -> bool:
        return self._renew is not None

    def renew(self) -> None:
        """Push the expiry `ttl_seconds` past now; LeaseLost when the lock is no longer ours."""
        if self._renew is None:
            raise LeaseLost(f"lock {self.name!r} was never taken")
        if not self._renew():
            log.warning("lock_lost", lock=self.name, ttl_seconds=self.ttl_seconds)
            raise LeaseLost(f"lock {self.name!r} lapsed and may be held by another")


@contextmanager
def held(name: str, ttl_seconds: int, now: datetime) -> Iterator[Held]:
    """Try to take lock `name` without waiting; yields a `Held` (true if taken), released after.

    The TTL is meant to be short and renewed as work progresses, so a holder
    killed outright stops blocking others within one TTL of its last renewal.
    """
    client = redis_client()
    if client is not None:
        with _redis_lock(client, name, ttl_seconds) as lock:
            yield lock
        return
    with _database_lease(name, ttl_seconds, now) as lease:
        yield lease


@contextmanager
def _redis_lock(client: Redis, name: str, ttl_seconds: int) -> Iterator[Held]:
    from redis.exceptions import LockNotOwnedError

    lock = client.lock(f"pulseboard:lock:{name}", timeout=ttl_seconds, blocking=False)
    acquired = lock.acquire()
    try:
        yield Held(name, ttl_seconds, partial(_reacquire, lock) if acquired else None)
    finally:
        if acquired:
            try:
                lock.release()
            except LockNotOwnedError:
                # Held past its expiry: the work is done and committed; another
                # sweep may already hold the lock, which is theirs to release.
                log.warning("lock_expired_before_release", lock=name, ttl_seconds=ttl_seconds)


def _reacquire(lock: Lock) -> bool:
    """Reset the Redis lock's expiry to its full TTL, if it is still ours (atomic, in Lua)."""
    from redis.exceptions import LockNotOwnedError

    try:
        lock.reacquire()
    except LockNotOwnedError:
        return False
    return True


@contextmanager
def _database_lease(name: str, ttl_seconds: int, now: datetime) -> Iterator[Held]:
    holder = holder_id()
    acquired = _take_lease(name, holder, now, now + timedelta(seconds=ttl_seconds))
    renew = partial(_renew_lease, name, holder, ttl_seconds) if acquired else None
    try:
        yield Held(name, ttl_seconds, renew)
    finally:
        if acquired:
            db.session.rollback()
            db.session.execute(
                update(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .values(expires_at=now)
            )
            db.session.commit()


def _renew_lease(name: str, holder: str, ttl_seconds: int) -> bool:
    """Extend our lease from the clock's now; False when another holder took it meanwhile."""
    renewed = db.session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=utcnow() + timedelta(seconds=ttl_seconds))
    ).rowcount
    db.session.commit()
    return bool(renewed)


def _take_lease(name: str, holder: str, now: datetime, expires_at: datetime) -> bool:
    """A conditional UPDATE takes an expired lease; an INSERT takes one never held."""
    taken = db.session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.expires_at <= now, Lease.holder == holder))
        .values(holder=holder, expires_at=expires_at)
    ).rowcount
    if taken:
        db.session.commit()
        return True
    try:
        db.session.execute(insert(Lease).values(name=name, holder=holder, expires_at=expires_at))
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        return False
