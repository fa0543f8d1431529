"""The common heartbeat as one prebuilt conditional UPDATE on an autocommit connection.

A connected device with nothing pending, no per-device thresholds and no
telemetry sample due needs nothing but its heartbeat time, deadlines and
telemetry stored: the UPDATE's conditions say exactly that, so one round trip
does the whole heartbeat, and whatever they turn away takes the planner in
fleet.services.heartbeats. The UPDATE must leave a row as the planner would.
"""

from __future__ import annotations

import json
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
    or_,
    update,
)

from fleet.context import current_application
from fleet.extensions import AUTOCOMMIT_BIND, db
from fleet.models import Device
from fleet.rules import ReconnectState, Status, Thresholds
from fleet.services.device_state import deadline_values
from fleet.services.driver import execute_on_driver
from fleet.timeutil import UTCDateTime

# The telemetry a person sees on the fleet page: a change of one marks the row changed.
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


def fast_heartbeat(
    token_hash: str,
    telemetry: dict[str, Any],
    now: datetime,
    address: str | None,
    defaults: Thresholds,
) -> bool:
    """The whole heartbeat as one autocommitted UPDATE; False when the device needs more.

    `telemetry` has every field of TELEMETRY_TYPES, None for those the heartbeat left out.
    """
    sample_every = timedelta(seconds=current_application().config["TELEMETRY_SAMPLE_SECONDS"])
    values = {
        **telemetry,
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
        # psycopg adapts every value natively except the JSON.
        extra = parameters["p_extra"]
        parameters["p_extra"] = None if extra is None else json.dumps(extra)
        return execute_on_driver(engine, FAST_HEARTBEAT, parameters) == 1
    with engine.connect() as connection:
        return connection.execute(FAST_HEARTBEAT, parameters).rowcount == 1
