"""Named locks with an expiry: a Redis key when Redis is configured, else a database lease."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from fleet.extensions import db
from fleet.models import Lease
from fleet.services import locks
from fleet.timeutil import utcnow

NAME = "some-work"


def test_a_second_holder_is_refused_while_the_first_holds_it(app):
    with locks.held(NAME, 60, utcnow()) as first, locks.held(NAME, 60, utcnow()) as second:
        assert first and not second


def test_the_lock_is_free_again_once_released(app):
    with locks.held(NAME, 60, utcnow()) as first:
        assert first
    with locks.held(NAME, 60, utcnow()) as again:
        assert again


def test_locks_of_other_names_do_not_interfere(app):
    with locks.held(NAME, 60, utcnow()) as first, locks.held("other", 60, utcnow()) as other:
        assert first and other


def test_a_lease_left_by_a_dead_holder_lapses_at_its_expiry(app, backend):
    if backend != "sqlite":
        pytest.skip("the database lease is the embedded default's lock; Redis expires its own")
    now = utcnow()
    db.session.add(Lease(name=NAME, holder="dead", expires_at=now + timedelta(seconds=5)))
    db.session.commit()
    with locks.held(NAME, 60, now) as acquired:
        assert not acquired
    with locks.held(NAME, 60, now + timedelta(seconds=5)) as acquired:
        assert acquired


def test_a_redis_lock_is_taken_with_its_ttl(app, backend):
    if backend != "postgres":
        pytest.skip("Redis runs with the PostgreSQL backend")
    with locks.held(NAME, 60, utcnow()) as acquired:
        assert acquired
        # A killed holder keeps it no longer than this: Redis expires the key.
        assert 0 < locks.redis_client().pttl(f"pulseboard:lock:{NAME}") <= 60_000


def test_a_redis_lock_left_by_a_killed_worker_expires(app, backend):
    if backend != "postgres":
        pytest.skip("Redis runs with the PostgreSQL backend")
    client = locks.redis_client()
    # Redis keeps its own clock, which no fixture moves: a short real expiry, then a poll.
    client.set(f"pulseboard:lock:{NAME}", "killed-worker", px=100)
    with locks.held(NAME, 60, utcnow()) as acquired:
        assert not acquired
    deadline = utcnow() + timedelta(seconds=2)
    while client.get(f"pulseboard:lock:{NAME}") is not None and utcnow() < deadline:
        client.execute_command("PING")
    with locks.held(NAME, 60, utcnow()) as acquired:
        assert acquired


def test_a_renewed_database_lease_outlives_its_ttl(app, backend, time_machine):
    if backend != "sqlite":
        pytest.skip("the database lease is the embedded default's lock")
    time_machine.move_to(utcnow())
    with locks.held(NAME, 10, utcnow()) as lock:
        for _ in range(3):
            time_machine.shift(timedelta(seconds=8))  # 24 s in all, never 10 since a renewal
            lock.renew()
            with locks.held(NAME, 10, utcnow()) as other:
                assert not other
        time_machine.shift(timedelta(seconds=11))  # a holder that stopped renewing
        with locks.held(NAME, 10, utcnow()) as other:
            assert other


def test_renewing_a_redis_lock_gives_it_its_whole_ttl_again(app, backend):
    if backend != "postgres":
        pytest.skip("Redis runs with the PostgreSQL backend")
    client = locks.redis_client()
    with locks.held(NAME, 1, utcnow()) as lock:
        # Redis keeps its own clock, which no fixture moves: a short real wait.
        deadline = utcnow() + timedelta(seconds=2)
        while client.pttl(f"pulseboard:lock:{NAME}") > 700 and utcnow() < deadline:
            client.execute_command("PING")
        lock.renew()
        assert client.pttl(f"pulseboard:lock:{NAME}") > 900


def take_over(backend):
    """Another holder takes the lock, as after a stall past its TTL."""
    if backend == "sqlite":
        db.session.execute(update(Lease).where(Lease.name == NAME).values(holder="other"))
        db.session.commit()
    else:
        locks.redis_client().set(f"pulseboard:lock:{NAME}", "other", px=60_000)


def test_renewing_a_lock_another_holder_took_fails_loudly(app, backend):
    with locks.held(NAME, 60, utcnow()) as lock:
        take_over(backend)
        with pytest.raises(locks.LeaseLost):
            lock.renew()


def test_a_lock_not_taken_cannot_be_renewed(app):
    with (
        locks.held(NAME, 60, utcnow()),
        locks.held(NAME, 60, utcnow()) as second,
        pytest.raises(locks.LeaseLost),
    ):
        second.renew()
