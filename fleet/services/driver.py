"""Running one prebuilt statement on psycopg itself, on a connection the thread holds.

Used by the common heartbeat only (fleet.services.fast_heartbeat), where
SQLAlchemy's execution (compiled-cache lookup, bind processing, result
wrapping) and the pool's check-out and check-in cost more than the round trip
itself. Driver errors are wrapped as SQLAlchemy would, so a database outage
still answers 503 like everywhere else.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.sql import Executable


def execute_on_driver(engine: Engine, statement: Executable, parameters: dict[str, Any]) -> int:
    """Run `statement` with `parameters` (adapted natively by psycopg); its row count.

    The rows an UPDATE touched, or the rows a SELECT returned (none fetched).

    The caller's parameters are named `p_...`; every other value the statement
    binds is a constant of its own. psycopg prepares the statement after a few
    runs on each pooled connection.
    """
    sql, constants = _compiled(engine, statement)
    parameters = {**parameters, **constants}
    dbapi_error = engine.dialect.loaded_dbapi.Error
    held = cursor = None
    failed = False
    try:
        held = _take_connection(engine)
        cursor = held.connection.cursor()
        cursor.execute(sql, parameters)
        return cursor.rowcount
    except dbapi_error as error:
        failed = True
        connection = held.connection if held else None
        gone = connection is None or engine.dialect.is_disconnect(
            error, connection.dbapi_connection, cursor
        )
        if gone and connection is not None:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql,
            parameters,
            error,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=gone,
            dialect=engine.dialect,
        ) from error
    finally:
        if cursor is not None:
            cursor.close()
        if failed:
            _drop_held_connection()
        if held is not None and held is not getattr(_held, "connection", None):
            held.give_back()


# Checking a connection out of SQLAlchemy's pool and back in is a measurable
# share of a heartbeat (docs/benchmarks.md). A thread holds the one it took for
# this long instead, then gives it back and takes one again, so that the pool's
# recycling still applies. psycopg's own pool (psycopg_pool), measured in its
# place, costs more than the budget allows (docs/benchmarks.md).
HOLD_SECONDS = 30.0


class _HeldConnection:
    """A pooled connection one thread keeps between statements."""

    def __init__(self, engine: Engine) -> None:
        self.connection: PoolProxiedConnection | None = None
        self.pool = engine.pool
        self.connection = engine.raw_connection()
        self.expires = time.monotonic() + HOLD_SECONDS

    def serves(self, engine: Engine) -> bool:
        # A disposed engine has a new pool: the held connection belongs to the old one.
        return self.pool is engine.pool and time.monotonic() < self.expires

    def may_be_held(self) -> bool:
        # Held connections never take the pool's overflow, which stays for the
        # threads that come and go (and for everything else the engine serves).
        pool = self.pool
        return isinstance(pool, QueuePool) and pool.checkedout() <= pool.size()

    def give_back(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    # A thread that ends drops its held connection; back to the pool it goes.
    __del__ = give_back


_held = threading.local()


def _take_connection(engine: Engine) -> _HeldConnection:
    """This thread's held connection to `engine`, or a fresh one (held if the pool has room)."""
    held = getattr(_held, "connection", None)
    if held is not None and held.serves(engine):
        return held
    _drop_held_connection()
    held = _HeldConnection(engine)
    if held.may_be_held():
        _held.connection = held
    return held


def _drop_held_connection() -> None:
    held = getattr(_held, "connection", None)
    _held.connection = None
    if held is not None:
        held.give_back()


def _compiled(engine: Engine, statement: Executable) -> tuple[str, dict[str, Any]]:
    """`statement` compiled once per engine, and the constants it binds itself."""
    per_engine = _statements.get(engine)
    if per_engine is None:
        per_engine = _statements[engine] = {}
    cached = per_engine.get(statement)
    if cached is None:
        compiled = statement.compile(dialect=engine.dialect)
        constants = {
            name: value for name, value in compiled.params.items() if not name.startswith("p_")
        }
        cached = per_engine[statement] = (compiled.string, constants)
    return cached


# Weak, so that an app (and its engine's pool) can be dropped, as tests do by the hundred.
_statements: weakref.WeakKeyDictionary[Engine, dict[Executable, tuple[str, dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)
