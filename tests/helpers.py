"""Assertion helpers shared by the tests."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from device_api import device_app_of
from fleet.extensions import db, limiter
from fleet.models import Device
from fleet.services import device_state
from fleet.services.heartbeats import find_device_by_hash
from fleet.tokens import hash_token

EVENTS_SQL = (
    "SELECT e.kind, e.from_status, e.to_status, e.source FROM device_event e "
    "JOIN device d ON d.id = e.device_id WHERE d.uid = :uid ORDER BY e.id"
)


def finished_bulk_line(client: Any, page: str, backend: str) -> str:
    """The result line of the bulk run `page` started, once the run is done (20 s at most).

    With Redis the run is an RQ job, so a real worker takes it; without, a thread does.
    """
    from rq import Queue, SimpleWorker

    from fleet.services import locks
    from jobs import QUEUE

    poll = re.search(r'hx-get="(/bulk/\d+)"', page).group(1)
    if backend == "postgres":
        SimpleWorker([Queue(QUEUE, connection=locks.redis_client())]).work(burst=True)
    deadline = time.monotonic() + 20
    while "Asked" not in (answer := client.get(poll).get_data(as_text=True)):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return answer


def device_row(uid: str) -> Device:
    """The device as stored now, bypassing the session's identity map."""
    db.session.expire_all()
    return device_state.get_device(uid)


def snapshot_of(token: str) -> Any:
    """The heartbeat snapshot of the device holding `token`, as the heartbeat reads it."""
    return find_device_by_hash(hash_token(token))


def events_of(uid: str) -> list[tuple[Any, ...]]:
    """(from, to, source) of the device's status events, oldest first."""
    rows = db.session.execute(text(EVENTS_SQL), {"uid": uid}).all()
    return [(row.from_status, row.to_status, row.source) for row in rows if row.kind == "status"]


def event_kinds(uid: str) -> list[str]:
    """The kinds of all the device's events, oldest first."""
    return [row.kind for row in db.session.execute(text(EVENTS_SQL), {"uid": uid})]


def configure(app: Any, **settings: Any) -> None:
    """Change settings of a built app, in the device app it dispatches to as well."""
    for each in (app, device_app_of(app)):
        each.config.update(settings)


def disable_rate_limits(app: Any) -> None:
    """Turn off every rate limit of a built app (the login's too)."""
    configure(app, RATELIMIT_ENABLED=False)
    limiter.enabled = False


HEARTBEAT = "/api/devices/heartbeat"


def beat(client: Any, token: str, **body: Any) -> Any:
    """POST a heartbeat with `body` as JSON, the way a device sends it."""
    return client.post(HEARTBEAT, json=body, headers={"Authorization": f"Bearer {token}"})


@contextmanager
def writes_refused(uid: str, how: str = "skip") -> Iterator[None]:
    """While inside, the database turns away every UPDATE of this device's row.

    `skip` drops the write silently (zero rows updated, as when another writer
    won a compare-and-set); `fail` makes the statement fail. A real trigger on
    either backend, dropped on the way out (PostgreSQL's schema is shared by
    the tests that follow).
    """
    assert re.fullmatch(r"[\w-]+", uid) and how in ("skip", "fail")
    if db.engine.dialect.name == "sqlite":
        action = "SELECT RAISE(IGNORE)" if how == "skip" else "SELECT RAISE(ABORT, 'refused')"
        create = [
            f"CREATE TRIGGER test_refuse BEFORE UPDATE ON device WHEN OLD.uid = '{uid}' "
            f"BEGIN {action}; END"
        ]
        drop = ["DROP TRIGGER IF EXISTS test_refuse"]
    else:
        action = "RETURN NULL" if how == "skip" else "RAISE EXCEPTION 'refused'"
        create = [
            "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {action}; END $$",
            "CREATE TRIGGER test_refuse BEFORE UPDATE ON device FOR EACH ROW "
            f"WHEN (OLD.uid = '{uid}') EXECUTE FUNCTION test_refuse()",
        ]
        drop = [
            "DROP TRIGGER IF EXISTS test_refuse ON device",
            "DROP FUNCTION IF EXISTS test_refuse()",
        ]
    for statement in create:
        db.session.execute(text(statement))
    db.session.commit()
    try:
        yield
    finally:
        db.session.rollback()
        for statement in drop:
            db.session.execute(text(statement))
        db.session.commit()
