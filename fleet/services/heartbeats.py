"""Heartbeats: the product's hot path.

The common heartbeat (a connected device, nothing pending, no per-device
thresholds, no telemetry sample due) is one prebuilt conditional UPDATE on an
autocommit connection: a single round trip. Everything else, and whatever the
UPDATE's conditions turn away, takes `record_heartbeat`: compare-and-set on the
device's revision, with status events, reconnect delivery and telemetry samples
in one transaction.
"""

from __future__ import annotations

import json
import random
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from fleet import rules
from fleet.context import current_application
from fleet.errors import Contention, Unauthorized
from fleet.extensions import AUTOCOMMIT_BIND, db
from fleet.models import Device, TelemetrySample
from fleet.rules import ReconnectState, Status, Thresholds
from fleet.services.devices import (
    MAX_ATTEMPTS,
    SNAPSHOT_COLUMNS,
    compare_and_set,
    connect,
    deadline_values,
    fleet_defaults,
    read_snapshot,
    thresholds_of,
)
from fleet.services.events import Event, EventKind, reconnect_event, record_events
from fleet.timeutil import UTCDateTime
from fleet.tokens import hash_token


@dataclass(frozen=True)
class Telemetry:
    battery_level: float | None = None
    wifi_strength: int | None = None
    app_version: str | None = None
    uptime_seconds: int | None = None
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class HeartbeatResult:
    status: Status
    server_time: datetime
    heartbeat_interval_seconds: int
    should_reconnect: bool
    reconnect_delay_seconds: int


@dataclass
class _HeartbeatPlan:
    values: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    deliver_reconnect: bool = False
    sample_telemetry: bool = False


def find_device_by_token(token: str) -> Row | None:
    """The heartbeat snapshot of the device holding `token`, or None."""
    return find_device_by_hash(hash_token(token))


def find_device_by_hash(token_hash: str) -> Row | None:
    """The heartbeat snapshot of the device whose token hashes to `token_hash`, or None."""
    query = select(*SNAPSHOT_COLUMNS).where(Device.token_hash == token_hash)
    return db.session.execute(query).one_or_none()


def accept_heartbeat(
    token_hash: str, telemetry: Telemetry, now: datetime, address: str | None = None
) -> HeartbeatResult:
    """A heartbeat from the holder of the token hashed to `token_hash`; Unauthorized for none.

    Tries the one-statement common case first; anything else falls through to
    the token lookup and `record_heartbeat`.
    """
    defaults = fleet_defaults()
    if _fast_heartbeat(token_hash, telemetry, now, address, defaults):
        return HeartbeatResult(Status.CONNECTED, now, defaults.interval, False, 0)
    snapshot = find_device_by_hash(token_hash)
    if snapshot is None:
        raise Unauthorized("unknown or rotated device token")
    return record_heartbeat(snapshot, telemetry, now, address)


VISIBLE_TELEMETRY = ("battery_level", "wifi_strength", "app_version")
NUMERIC_TELEMETRY = ("battery_level", "wifi_strength", "uptime_seconds")
TELEMETRY_TYPES = {
    "battery_level": Float(),
    "wifi_strength": Integer(),
    "app_version": String(),
    "uptime_seconds": BigInteger(),
    "extra": JSON(none_as_null=True),
}


def _parameter(name: str) -> Any:
    # Numbers are cast explicitly: PostgreSQL cannot type a bare float parameter
    # that appears only in `IS NOT NULL` and COALESCE.
    parameter = bindparam(f"p_{name}", type_=TELEMETRY_TYPES[name])
    return cast(parameter, TELEMETRY_TYPES[name]) if name in NUMERIC_TELEMETRY else parameter


def _reported(name: str) -> Any:
    """The heartbeat's value, or the stored one when the heartbeat left the field out."""
    return func.coalesce(_parameter(name), getattr(Device, name))


def _differs(name: str) -> Any:
    return and_(
        _parameter(name).is_not(None), getattr(Device, name).is_distinct_from(_parameter(name))
    )


# Built once: per request only the parameters change, so SQLAlchemy's compiled
# cache and psycopg's prepared statements both apply.
FAST_HEARTBEAT = (
    update(Device)
    .where(
        Device.token_hash == bindparam("p_token_hash"),
        Device.status == Status.CONNECTED.value,
        or_(
            Device.reconnect_state.is_(None), Device.reconnect_state != ReconnectState.PENDING.value
        ),
        Device.heartbeat_interval_seconds.is_(None),
        Device.grace_period_seconds.is_(None),
        Device.disconnect_after_seconds.is_(None),
        Device.telemetry_sampled_at > bindparam("p_sample_due_before"),
    )
    .values(
        last_heartbeat_at=bindparam("p_now"),
        last_address=bindparam("p_address"),
        offline_due_at=bindparam("p_offline_due_at"),
        disconnect_due_at=bindparam("p_disconnect_due_at"),
        changed_at=case(
            (
                or_(*(_differs(name) for name in VISIBLE_TELEMETRY)),
                bindparam("p_visible_change_at", type_=UTCDateTime()),
            ),
            else_=Device.changed_at,
        ),
        **{name: _reported(name) for name in TELEMETRY_TYPES},
    )
)


def _fast_heartbeat(
    token_hash: str, telemetry: Telemetry, now: datetime, address: str | None, defaults: Thresholds
) -> bool:
    """The whole heartbeat as one autocommitted UPDATE; False when the device needs more."""
    sample_every = timedelta(seconds=current_application().config["TELEMETRY_SAMPLE_SECONDS"])
    values = {
        **vars(telemetry),
        **deadline_values(now, defaults),
        "token_hash": token_hash,
        "sample_due_before": now - sample_every,
        "now": now,
        "visible_change_at": now,
        "address": address,
    }
    # Parameter names may not repeat column names in an UPDATE, hence the prefix.
    parameters = {f"p_{name}": value for name, value in values.items()}
    # A single statement needs no transaction around it: autocommit spares the
    # BEGIN and COMMIT round trips.
    engine = db.engines[AUTOCOMMIT_BIND]
    if engine.dialect.name == "postgresql":
        return _execute_on_driver(engine, parameters) == 1
    with engine.connect() as connection:
        return connection.execute(FAST_HEARTBEAT, parameters).rowcount == 1


def _execute_on_driver(engine: Engine, parameters: dict[str, Any]) -> int:
    """FAST_HEARTBEAT through psycopg itself; the number of rows it updated.

    SQLAlchemy's execution (compiled-cache lookup, bind processing, result
    wrapping) cost more than the round trip itself. psycopg adapts every value
    here natively except the JSON, and prepares the statement after a few runs
    on each pooled connection. Driver errors are wrapped as SQLAlchemy would,
    so a database outage still answers 503.
    """
    sql, constants = _driver_statement(engine)
    extra = parameters["p_extra"]
    parameters = {
        **parameters,
        **constants,
        "p_extra": None if extra is None else json.dumps(extra),
    }
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


# Checking a connection out of SQLAlchemy's pool and back in cost about a
# fifteenth of a heartbeat. A thread holds the one it took for this long
# instead, then gives it back and takes one again, so that the pool's recycling
# still applies.
HOLD_SECONDS = 30.0


class _HeldConnection:
    """A pooled connection one thread keeps between heartbeats."""

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


def _driver_statement(engine: Engine) -> tuple[str, dict[str, Any]]:
    """FAST_HEARTBEAT compiled once per engine, and the constants it binds."""
    cached = _driver_statements.get(engine)
    if cached is None:
        compiled = FAST_HEARTBEAT.compile(dialect=engine.dialect)
        constants = {
            name: value for name, value in compiled.params.items() if not name.startswith("p_")
        }
        cached = _driver_statements[engine] = (compiled.string, constants)
    return cached


# Weak, so that an app (and its engine's pool) can be dropped, as tests do by the hundred.
_driver_statements: weakref.WeakKeyDictionary[Engine, tuple[str, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def record_heartbeat(
    snapshot: Row, telemetry: Telemetry, now: datetime, address: str | None = None
) -> HeartbeatResult:
    """Accept a heartbeat: the device becomes connected and may collect a pending reconnect.

    1. Plan the update from the snapshot read with the token lookup.
    2. Compare-and-set on the device's revision; on a lost race, re-read and re-plan.
    3. In the same transaction write the events and any telemetry sample, then commit.
    """
    for attempt in range(MAX_ATTEMPTS):
        plan = _plan_heartbeat(snapshot, telemetry, now, address)
        if compare_and_set(snapshot, plan.values, same_heartbeat=False):
            record_events(plan.events)
            if plan.sample_telemetry:
                _sample_telemetry(snapshot.id, telemetry, now)
            db.session.commit()
            return HeartbeatResult(
                status=Status.CONNECTED,
                server_time=now,
                heartbeat_interval_seconds=thresholds_of(snapshot).interval,
                should_reconnect=plan.deliver_reconnect,
                reconnect_delay_seconds=(snapshot.reconnect_delay_seconds or 0)
                if plan.deliver_reconnect
                else 0,
            )
        db.session.rollback()
        # SQLite has no row lock to wait on: a short random pause lets the
        # writers that keep winning get out of the way.
        time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        fresh = read_snapshot(snapshot.id)
        if fresh.token_hash != snapshot.token_hash:
            # Re-enrolled while we were busy: the token this heartbeat came with is dead.
            raise Unauthorized("unknown or rotated device token")
        snapshot = fresh
    raise Contention("the device is being updated concurrently; retry shortly")


def _plan_heartbeat(
    snapshot: Row, telemetry: Telemetry, now: datetime, address: str | None
) -> _HeartbeatPlan:
    thresholds = thresholds_of(snapshot)
    # Fields a heartbeat leaves out keep their last reported value.
    reported = {key: value for key, value in vars(telemetry).items() if value is not None}
    values: dict[str, Any] = {
        "last_heartbeat_at": now,
        "last_address": address,
        **reported,
        **deadline_values(now, thresholds),
    }
    plan = _HeartbeatPlan(values=values)
    visible_change = any(
        key in reported and reported[key] != getattr(snapshot, key) for key in VISIBLE_TELEMETRY
    )
    state_change = _plan_status(plan, snapshot, now)
    state_change |= _plan_reconnect(plan, snapshot, now)
    if state_change:
        values["revision"] = snapshot.revision + 1
    if state_change or visible_change:
        values["changed_at"] = now
    last_sample = snapshot.telemetry_sampled_at
    sample_every = current_app.config["TELEMETRY_SAMPLE_SECONDS"]
    if last_sample is None or (now - last_sample).total_seconds() >= sample_every:
        plan.sample_telemetry = True
        values["telemetry_sampled_at"] = now
    return plan


def _plan_status(plan: _HeartbeatPlan, snapshot: Row, now: datetime) -> bool:
    if snapshot.status == Status.CONNECTED:
        return False
    connect(snapshot, "heartbeat received", now, plan.values, plan.events)
    return True


def _plan_reconnect(plan: _HeartbeatPlan, snapshot: Row, now: datetime) -> bool:
    state = rules.reconnect_state_at(now, snapshot.reconnect_state, snapshot.reconnect_expires_at)
    if snapshot.reconnect_state != ReconnectState.PENDING:
        return False
    if state is ReconnectState.EXPIRED:
        plan.values["reconnect_state"] = ReconnectState.EXPIRED
        plan.events.append(
            reconnect_event(snapshot.id, snapshot.uid, EventKind.RECONNECT_EXPIRED, now)
        )
        return True
    plan.deliver_reconnect = True
    plan.values.update(reconnect_state=ReconnectState.DELIVERED, reconnect_delivered_at=now)
    plan.events.append(
        reconnect_event(snapshot.id, snapshot.uid, EventKind.RECONNECT_DELIVERED, now)
    )
    return True


def _sample_telemetry(device_id: int, telemetry: Telemetry, now: datetime) -> None:
    db.session.execute(
        insert(TelemetrySample).values(
            device_id=device_id,
            recorded_at=now,
            battery_level=telemetry.battery_level,
            wifi_strength=telemetry.wifi_strength,
        )
    )
