"""Heartbeats: the product's hot path, from the token to the committed answer.

1. The common heartbeat (a connected device, nothing pending, no per-device
   thresholds; on PostgreSQL a due telemetry sample included) is one prebuilt
   statement: fleet.services.fast_heartbeat, run on the driver by
   fleet.services.driver.
2. Everything else, and whatever that UPDATE's conditions turn away, is planned
   here from the device's snapshot and written by compare-and-set on its
   revision, with status events, reconnect delivery and telemetry samples in
   one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from random import random
from typing import Any

from flask import current_app
from sqlalchemy import Row, insert, select

from fleet import rules
from fleet.context import current_application
from fleet.errors import Unauthorized
from fleet.extensions import db
from fleet.models import Device, TelemetrySample
from fleet.rules import ReconnectState, Status
from fleet.services.commands import Ack, apply_acks, check_acks, deliver_pending
from fleet.services.device_state import (
    SNAPSHOT_COLUMNS,
    compare_and_set,
    connect,
    deadline_values,
    fleet_defaults,
    read_snapshot,
    retry_on_conflict,
    thresholds_of,
)
from fleet.services.events import Event, EventKind, reconnect_event, record_events
from fleet.services.fast_heartbeat import VISIBLE_TELEMETRY, fast_heartbeat, visible_band


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
    # A tuple of IssuedCommand; declared Any so that pydantic inspects it only
    # when it is not empty: a typed tuple of dataclasses cost every heartbeat's
    # answer (bench.instructions).
    commands: Any = ()


@dataclass
class _HeartbeatPlan:
    values: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    deliver_reconnect: bool = False
    deliver_commands: bool = False
    sample_telemetry: bool = False


def find_device_by_hash(token_hash: str) -> Row | None:
    """The heartbeat snapshot of the device whose token hashes to `token_hash`, or None."""
    query = select(*SNAPSHOT_COLUMNS).where(Device.token_hash == token_hash)
    return db.session.execute(query).one_or_none()


def accept_heartbeat(
    token_hash: str,
    telemetry: Telemetry,
    now: datetime,
    address: str | None = None,
    acks: list[Ack] | None = None,
    config: Mapping[str, Any] | None = None,
) -> HeartbeatResult:
    """A heartbeat from the holder of the token hashed to `token_hash`; Unauthorized for none.

    Tries the one-statement common case first (a heartbeat with acks has
    results to record, so it never is); anything else falls through to the
    token lookup and `record_heartbeat`. `config` is the app's, when the
    caller has already read it: each look-up through the app proxy costs.
    """
    config = current_application().config if config is None else config
    defaults = fleet_defaults(config)
    if not acks and fast_heartbeat(token_hash, vars(telemetry), now, address, defaults, config):
        interval = interval_guidance(defaults.interval, config)
        return HeartbeatResult(Status.CONNECTED, now, interval, False, 0)
    snapshot = find_device_by_hash(token_hash)
    if snapshot is None:
        raise Unauthorized("unknown or rotated device token")
    return record_heartbeat(snapshot, telemetry, now, address, acks or [])


def interval_guidance(interval: int, config: Mapping[str, Any]) -> int:
    """The interval a reply asks the device for: `interval` with HEARTBEAT_JITTER_PERCENT jitter."""
    return rules.jittered_interval(
        interval,
        config["HEARTBEAT_JITTER_PERCENT"],
        config["HEARTBEAT_MIN_INTERVAL_SECONDS"],
        random(),
    )


def record_heartbeat(
    snapshot: Row,
    telemetry: Telemetry,
    now: datetime,
    address: str | None = None,
    acks: list[Ack] | None = None,
) -> HeartbeatResult:
    """Accept a heartbeat: the device becomes connected and may collect a pending reconnect.

    1. Plan the update from the snapshot read with the token lookup.
    2. Compare-and-set on the device's revision; on a lost race, re-read and re-plan.
    3. In the same transaction write the events and any telemetry sample, then commit.
    """
    seen = snapshot
    acks = acks or []
    if acks:
        # Refused before anything is written: a bad ack changes nothing, not even the heartbeat.
        check_acks(snapshot.id, acks)

    def attempt(number: int) -> HeartbeatResult | None:
        nonlocal seen
        if number:
            seen = _reread(seen)
        return _try_heartbeat(seen, telemetry, now, address, acks)

    return retry_on_conflict(attempt)


def _reread(snapshot: Row) -> Row:
    """The device afresh (row locked) after a lost race; Unauthorized if its token was rotated."""
    fresh = read_snapshot(snapshot.id)
    if fresh.token_hash != snapshot.token_hash:
        # Re-enrolled while we were busy: the token this heartbeat came with is dead.
        raise Unauthorized("unknown or rotated device token")
    return fresh


def _try_heartbeat(
    snapshot: Row, telemetry: Telemetry, now: datetime, address: str | None, acks: list[Ack]
) -> HeartbeatResult | None:
    """Plan and write the heartbeat, then commit; None when another writer won the race."""
    plan = _plan_heartbeat(snapshot, telemetry, now, address)
    if acks:
        plan.values["changed_at"] = now  # the grid shows the latest command's state
    if not compare_and_set(
        snapshot, plan.values, same_heartbeat=False, same_sample=plan.sample_telemetry
    ):
        return None
    record_events(plan.events)
    if plan.sample_telemetry:
        _sample_telemetry(snapshot.id, telemetry, now)
    if acks:
        apply_acks(snapshot.id, snapshot.uid, acks, now)
    commands = deliver_pending(snapshot.id, snapshot.uid, now) if plan.deliver_commands else ()
    db.session.commit()
    return HeartbeatResult(
        status=Status.CONNECTED,
        server_time=now,
        heartbeat_interval_seconds=interval_guidance(
            thresholds_of(snapshot).interval, current_app.config
        ),
        should_reconnect=plan.deliver_reconnect,
        reconnect_delay_seconds=(snapshot.reconnect_delay_seconds or 0)
        if plan.deliver_reconnect
        else 0,
        commands=commands,
    )


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
        key in reported
        and visible_band(key, reported[key]) != visible_band(key, getattr(snapshot, key))
        for key in VISIBLE_TELEMETRY
    )
    state_change = _plan_status(plan, snapshot, now)
    state_change |= _plan_reconnect(plan, snapshot, now)
    if snapshot.commands_pending:
        # Cleared by the compare-and-set: a request made since bumped the revision,
        # so this heartbeat retries and cannot clear a flag it never saw set.
        plan.deliver_commands = True
        values["commands_pending"] = False
        state_change = True
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
