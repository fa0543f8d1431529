"""Named locks with an expiry: in Redis when configured, else a row in the database.

A holder that dies keeps the lock only until it expires, so a killed worker
never blocks sweeps for longer than the lock's TTL.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from flask import current_app
from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError

from fleet.extensions import db
from fleet.models import Lease

if TYPE_CHECKING:
    from redis import Redis

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


@contextmanager
def held(name: str, ttl_seconds: int, now: datetime) -> Iterator[bool]:
    """Try to take lock `name` without waiting; yields whether it was taken, releases after."""
    client = redis_client()
    if client is not None:
        with _redis_lock(client, name, ttl_seconds) as acquired:
            yield acquired
        return
    with _database_lease(name, ttl_seconds, now) as acquired:
        yield acquired


@contextmanager
def _redis_lock(client: Redis, name: str, ttl_seconds: int) -> Iterator[bool]:
    from redis.exceptions import LockNotOwnedError

    lock = client.lock(f"pulseboard:lock:{name}", timeout=ttl_seconds, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except LockNotOwnedError:
                # Held past its expiry: the work is done and committed; another
                # sweep may already hold the lock, which is theirs to release.
                log.warning("lock_expired_before_release", lock=name, ttl_seconds=ttl_seconds)


@contextmanager
def _database_lease(name: str, ttl_seconds: int, now: datetime) -> Iterator[bool]:
    holder = holder_id()
    acquired = _take_lease(name, holder, now, now + timedelta(seconds=ttl_seconds))
    try:
        yield acquired
    finally:
        if acquired:
            db.session.rollback()
            db.session.execute(
                update(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .values(expires_at=now)
            )
            db.session.commit()


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
