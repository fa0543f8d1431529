"""The common heartbeat as one prebuilt conditional UPDATE on an autocommit connection.

A connected device with nothing pending and no per-device thresholds changes no
state with a heartbeat: it needs its heartbeat time, deadlines and telemetry
stored, and on PostgreSQL any telemetry sample that is due inserted by the same
statement (on SQLite, the embedded default, a due sample is left to the
planner). The UPDATE's conditions say exactly that, so one round trip does the
whole heartbeat, and whatever they turn away takes the planner in
fleet.services.heartbeats. The statement must leave the rows as the planner would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from fleet.context import current_application
from fleet.extensions import AUTOCOMMIT_BIND, db
from fleet.models import Device, TelemetrySample
from fleet.rules import ReconnectState, Status, Thresholds
from fleet.services.device_state import deadline_values
from fleet.services.driver import execute_on_driver
from fleet.timeutil import UTCDateTime

# The telemetry a person sees on the fleet page: a change of one marks the row changed.
VISIBLE_TELEMETRY = ("battery_level", "wifi_strength", "app_version")
# Wi-Fi and battery jitter by a unit or two on every heartbeat: a change counts
# as visible only when the value moves into another band of this width (5 dBm,
# 5 %), so a poll does not resend a row for noise. The stored value stays exact.
VISIBLE_STEP = {"battery_level": 5, "wifi_strength": 5}
# Added before banding, so every band starts at a multiple of the step on both
# backends (integer division truncates towards zero, and Wi-Fi is negative).
_BAND_OFFSET = 200


def visible_band(name: str, value: Any) -> Any:
    """The band a stepped value shows in; other values are compared as they are."""
    step = VISIBLE_STEP.get(name)
    if step is None or value is None:
        return value
    return (round(value) + _BAND_OFFSET) // step


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


def _band(name: str, value: Any) -> Any:
    """SQL for `visible_band`: the same bands in PostgreSQL and SQLite."""
    if name not in VISIBLE_STEP:
        return value
    # Constants as literal SQL: the prebuilt statement's only parameters are the heartbeat's.
    offset, step = (literal_column(str(n), Integer()) for n in (_BAND_OFFSET, VISIBLE_STEP[name]))
    return (cast(func.round(value), Integer) + offset) // step


def _differs(name: str) -> Any:
    stored, reported = _band(name, getattr(Device, name)), _band(name, _parameter(name))
    return and_(_parameter(name).is_not(None), stored.is_distinct_from(reported))


# What makes a heartbeat common: the device is connected with nothing pending
# and no thresholds of its own, so the heartbeat changes no state.
_COMMON = (
    Device.token_hash == bindparam("p_token_hash"),
    Device.status == Status.CONNECTED.value,
    or_(Device.reconnect_state.is_(None), Device.reconnect_state != ReconnectState.PENDING.value),
    Device.commands_pending.is_(False),
    Device.heartbeat_interval_seconds.is_(None),
    Device.grace_period_seconds.is_(None),
    Device.disconnect_after_seconds.is_(None),
)
_NOW = bindparam("p_now", type_=UTCDateTime())
_SAMPLE_DUE_BEFORE = bindparam("p_sample_due_before", type_=UTCDateTime())
_STORED = {
    "last_heartbeat_at": _NOW,
    "last_address": bindparam("p_address"),
    "offline_due_at": bindparam("p_offline_due_at", type_=UTCDateTime()),
    "disconnect_due_at": bindparam("p_disconnect_due_at", type_=UTCDateTime()),
    "changed_at": case(
        (or_(*(_differs(name) for name in VISIBLE_TELEMETRY)), _NOW),
        else_=Device.changed_at,
    ),
    **{name: _reported(name) for name in TELEMETRY_TYPES},
}

# Built once: per request only the parameters change, so SQLAlchemy's compiled
# cache and psycopg's prepared statements both apply. SQLite's, for a heartbeat
# with no telemetry sample due: SQLite has no data-modifying CTE.
FAST_HEARTBEAT = (
    update(Device)
    .where(*_COMMON, Device.telemetry_sampled_at > _SAMPLE_DUE_BEFORE)
    .values(**_STORED)
)

# PostgreSQL's version also takes a heartbeat whose telemetry sample is due
# (a device's first heartbeat, one in ten at the defaults): the sample is
# inserted by the same statement, so the heartbeat is still one round trip and
# one transaction. RETURNING sees the new row, whose sample time is now exactly
# when this heartbeat sampled. The outer SELECT returns one row per device
# updated, so its row count is the answer, with no row fetched.
_BEAT = (
    update(Device)
    # A device sampled at this very instant would look sampled by this heartbeat
    # in RETURNING: rare enough to leave to the planner.
    .where(*_COMMON, Device.telemetry_sampled_at.is_distinct_from(_NOW))
    .values(
        **_STORED,
        telemetry_sampled_at=case(
            (Device.telemetry_sampled_at > _SAMPLE_DUE_BEFORE, Device.telemetry_sampled_at),
            else_=_NOW,
        ),
    )
    .returning(Device.id, Device.telemetry_sampled_at)
    .cte("beat")
)
_SAMPLE = insert(TelemetrySample).from_select(
    ["device_id", "recorded_at", "battery_level", "wifi_strength"],
    select(_BEAT.c.id, _NOW, _parameter("battery_level"), _parameter("wifi_strength")).where(
        _BEAT.c.telemetry_sampled_at == _NOW
    ),
)
FAST_HEARTBEAT_SAMPLING = select(_BEAT.c.id).add_cte(_SAMPLE.cte("sample"))


def fast_heartbeat(
    token_hash: str,
    telemetry: dict[str, Any],
    now: datetime,
    address: str | None,
    defaults: Thresholds,
    config: Mapping[str, Any] | None = None,
) -> bool:
    """The whole heartbeat as one autocommitted UPDATE; False when the device needs more.

    `telemetry` has every field of TELEMETRY_TYPES, None for those the heartbeat left out;
    `config` is the app's, when the caller has already read it.
    """
    config = current_application().config if config is None else config
    sample_every = timedelta(seconds=config["TELEMETRY_SAMPLE_SECONDS"])
    values = {
        **telemetry,
        **deadline_values(now, defaults),
        "token_hash": token_hash,
        "sample_due_before": now - sample_every,
        "now": now,
        "address": address,
    }
    # Parameter names may not repeat column names in an UPDATE, hence the prefix.
    parameters = {f"p_{name}": value for name, value in values.items()}
    # A single statement needs no transaction around it: autocommit spares the
    # BEGIN and COMMIT round trips.
    engine = db.engines[AUTOCOMMIT_BIND]
    if engine.dialect.name == "postgresql":
        # psycopg adapts every value natively except the JSON.
        extra = parameters["p_extra"]
        parameters["p_extra"] = None if extra is None else json.dumps(extra)
        return execute_on_driver(engine, FAST_HEARTBEAT_SAMPLING, parameters) == 1
    with engine.connect() as connection:
        return connection.execute(FAST_HEARTBEAT, parameters).rowcount == 1
