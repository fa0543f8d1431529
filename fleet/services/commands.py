"""Remote commands: staff ask a device to reconnect, restart, reboot, refresh or show its screen.

A command is pending until the device's next heartbeat carries it (exactly
once: a conditional UPDATE ... RETURNING hands each pending row to one
heartbeat only), then delivered until the device acknowledges it in a later
heartbeat (ok or failed, with its message). A pending command nobody collects
within COMMAND_TTL_SECONDS expires; a delivered one without an ack within
COMMAND_ACK_TTL_SECONDS is unacknowledged (the sweep settles both). One
pending command of a kind per device: a newer request replaces the older.

`reconnect` keeps its own columns on the device (fleet.services.reconnects),
so `should_reconnect` reads as before; asked for as a command it also gets a
command row, delivered with the same heartbeat.

`Device.commands_pending` says a device has a command waiting: the common
heartbeat's one statement excludes such devices, so a heartbeat with nothing
pending never touches the command table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, insert, select, update

from fleet.errors import InvalidInput
from fleet.extensions import db
from fleet.models import Device, DeviceCommand
from fleet.rules import Source
from fleet.services.device_state import get_device
from fleet.services.events import Event, EventKind, record_events
from fleet.services.reconnects import store_reconnects

# Every kind takes an optional delay before the device acts, in seconds.
PARAM_BOUNDS = {"delay_seconds": (0, 3600)}
HISTORY_LIMIT = 50


class CommandState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    OK = "ok"
    FAILED = "failed"
    UNACKNOWLEDGED = "unacknowledged"
    EXPIRED = "expired"
    REPLACED = "replaced"


# The states in which a device may (still) acknowledge: it was given the command.
ACKABLE = (CommandState.DELIVERED, CommandState.UNACKNOWLEDGED)
KNOWN_TO_DEVICE = (*ACKABLE, CommandState.OK, CommandState.FAILED)


@dataclass(frozen=True)
class IssuedCommand:
    """A command as the heartbeat reply carries it."""

    id: int
    kind: str
    params: dict[str, Any]
    issued_at: datetime


@dataclass(frozen=True)
class Ack:
    id: int
    result: str  # "ok" | "failed"
    message: str | None = None


@dataclass(frozen=True)
class Requested:
    command: DeviceCommand
    replaced_id: int | None


def check_request(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params of a valid request of `kind`; InvalidInput naming what is wrong."""
    accepted = current_app.config["COMMAND_KINDS"]
    if kind not in accepted:
        raise InvalidInput(
            f"unknown or disabled command kind {kind!r}",
            {"field": "kind", "accepted": list(accepted)},
        )
    for name, value in params.items():
        bounds = PARAM_BOUNDS.get(name)
        if bounds is None:
            raise InvalidInput(f"unknown parameter {name!r}", {"field": f"params.{name}"})
        low, high = bounds
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(
                f"{name} must be a whole number from {low} to {high}",
                {"field": f"params.{name}"},
            )
    return dict(params)


def request_command(
    uid: str, kind: str, params: dict[str, Any], actor: str, now: datetime
) -> Requested:
    """Ask one device for a command on its next heartbeat; replaces a pending one of the kind."""
    params = check_request(kind, params)
    device = get_device(uid)
    [stored] = store_commands([(device.id, device.uid, params)], kind, actor, now)
    if kind == "reconnect":
        delay = params.get("delay_seconds", current_app.config["RECONNECT_DELAY_SECONDS"])
        details = {"command_id": stored.command_id}
        store_reconnects([(device.id, device.uid, delay)], actor, now, details)
    db.session.commit()
    command = db.session.get(DeviceCommand, stored.command_id)
    return Requested(command=command, replaced_id=stored.replaced_id)


@dataclass(frozen=True)
class Stored:
    device_id: int
    command_id: int
    replaced_id: int | None


def store_commands(
    requests: list[tuple[int, str, dict[str, Any]]],
    kind: str,
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> list[Stored]:
    """Store a pending `kind` for each (device id, uid, checked params), uncommitted.

    1. Mark each device's pending command of the kind replaced (one statement).
    2. Insert the new commands (one statement) and flag the devices as having
       commands pending; the revision bump makes a heartbeat that read a
       device before this request retry, so it cannot clear a flag it never saw.
    3. Write a requested (and any replaced) event per device, with the actor.
    """
    device_ids = [device_id for device_id, _, _ in requests]
    uids = {device_id: uid for device_id, uid, _ in requests}
    replaced = _replace_pending(device_ids, kind)
    ttl = current_app.config[
        "RECONNECT_TTL_SECONDS" if kind == "reconnect" else "COMMAND_TTL_SECONDS"
    ]
    rows = [
        {
            "device_id": device_id,
            "kind": kind,
            "params": params,
            "state": CommandState.PENDING,
            "requested_by": actor,
            "issued_at": now,
            "expires_at": now + timedelta(seconds=ttl),
        }
        for device_id, _, params in requests
    ]
    inserted = db.session.execute(
        insert(DeviceCommand).returning(DeviceCommand.id, DeviceCommand.device_id), rows
    ).all()
    ids = {row.device_id: row.id for row in inserted}
    db.session.execute(
        update(Device)
        .where(Device.id.in_(device_ids))
        .values(commands_pending=True, revision=Device.revision + 1, changed_at=now)
        .execution_options(synchronize_session=False)
    )
    events = [
        _event_of(device_id, uids[device_id], old, kind, EventKind.COMMAND_REPLACED, now, actor)
        for device_id, old in replaced.items()
    ]
    for device_id, _, params in requests:
        event = _event_of(
            device_id,
            uids[device_id],
            ids[device_id],
            kind,
            EventKind.COMMAND_REQUESTED,
            now,
            actor,
        )
        events.append(_with(event, details={**(details or {}), **event.details, "params": params}))
    record_events(events)
    return [Stored(device_id, ids[device_id], replaced.get(device_id)) for device_id in device_ids]


def _replace_pending(device_ids: list[int], kind: str) -> dict[int, int]:
    """Mark these devices' pending commands of `kind` replaced; the replaced id by device id."""
    replaced = db.session.execute(
        update(DeviceCommand)
        .where(
            DeviceCommand.device_id.in_(device_ids),
            DeviceCommand.kind == kind,
            DeviceCommand.state == CommandState.PENDING,
        )
        .values(state=CommandState.REPLACED)
        .returning(DeviceCommand.id, DeviceCommand.device_id)
        .execution_options(synchronize_session=False)
    ).all()
    return {row.device_id: row.id for row in replaced}


def open_commands() -> dict[tuple[str, str], int]:
    """How many commands wait, by (state, kind): pending ones for a heartbeat, delivered ones
    for an ack. One GROUP BY over the (state, expires_at) index's range, for the metrics."""
    rows = db.session.execute(
        select(DeviceCommand.state, DeviceCommand.kind, func.count())
        .where(DeviceCommand.state.in_((CommandState.PENDING, CommandState.DELIVERED)))
        .group_by(DeviceCommand.state, DeviceCommand.kind)
    )
    return {(state, kind): count for state, kind, count in rows}


def list_commands(uid: str, limit: int = HISTORY_LIMIT) -> list[DeviceCommand]:
    """A device's commands, newest first."""
    device = get_device(uid)
    return latest_commands(device.id, limit)


def latest_by_device(device_ids: list[int]) -> dict[int, DeviceCommand]:
    """Each of these devices' newest command, by device id: one query for a page of rows."""
    if not device_ids:
        return {}
    newest = (
        select(func.max(DeviceCommand.id))
        .where(DeviceCommand.device_id.in_(device_ids))
        .group_by(DeviceCommand.device_id)
    )
    rows = db.session.scalars(select(DeviceCommand).where(DeviceCommand.id.in_(newest)))
    return {command.device_id: command for command in rows}


def latest_commands(device_id: int, limit: int = HISTORY_LIMIT) -> list[DeviceCommand]:
    query = (
        select(DeviceCommand)
        .where(DeviceCommand.device_id == device_id)
        .order_by(DeviceCommand.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class CommandPanel:
    """The device page's commands section: recent commands and the latest screenshot."""

    uid: str
    commands: list[DeviceCommand]
    screenshot: Any  # fleet.services.screenshots.ScreenshotInfo | None
    kinds: tuple[str, ...]


PANEL_LIMIT = 10


def command_panel(uid: str) -> CommandPanel:
    """What the device page shows of a device's commands (its 2 s refresh)."""
    # Imported here: screenshots checks commands' states from this module.
    from fleet.services.screenshots import latest_screenshot

    device = get_device(uid)
    return CommandPanel(
        uid=device.uid,
        commands=latest_commands(device.id, PANEL_LIMIT),
        screenshot=latest_screenshot(device.id),
        kinds=tuple(current_app.config["COMMAND_KINDS"]),
    )


# --- the heartbeat's side (inside its transaction, uncommitted) ------------------


def check_acks(device_id: int, acks: list[Ack]) -> None:
    """InvalidInput, before anything is written, if an ack names a command this device never got."""
    ids = {ack.id for ack in acks}
    known = set(
        db.session.scalars(
            select(DeviceCommand.id).where(
                DeviceCommand.id.in_(ids),
                DeviceCommand.device_id == device_id,
                DeviceCommand.state.in_(KNOWN_TO_DEVICE),
            )
        )
    )
    unknown = sorted(ids - known)
    if unknown:
        raise InvalidInput(
            "acks name commands this device was never given",
            {"field": "acks", "unknown_ids": unknown},
        )


def apply_acks(device_id: int, uid: str, acks: list[Ack], now: datetime) -> None:
    """Record the device's results; a repeated ack of a settled command changes nothing."""
    events = []
    for ack in acks:
        row = db.session.execute(
            update(DeviceCommand)
            .where(
                DeviceCommand.id == ack.id,
                DeviceCommand.device_id == device_id,
                DeviceCommand.state.in_(ACKABLE),
            )
            .values(state=ack.result, result=ack.result, message=ack.message, acknowledged_at=now)
            .returning(DeviceCommand.kind)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if row is not None:
            event = _event_of(device_id, uid, ack.id, row.kind, EventKind.COMMAND_ACKNOWLEDGED, now)
            details = {**(event.details or {}), "result": ack.result, "message": ack.message}
            reason = f"{row.kind} acknowledged: {ack.result}"
            events.append(_with(event, reason=reason, source=Source.DEVICE, details=details))
    record_events(events)


def deliver_pending(device_id: int, uid: str, now: datetime) -> tuple[IssuedCommand, ...]:
    """Hand this heartbeat the device's pending commands; each goes to one heartbeat only.

    The UPDATE's `state = 'pending'` condition is the compare-and-set: a
    concurrent heartbeat waits for this row lock, then finds it delivered.
    """
    expired = db.session.execute(
        _settle(and_(DeviceCommand.device_id == device_id, _pending_due(now)), CommandState.EXPIRED)
    ).all()
    ack_by = now + timedelta(seconds=current_app.config["COMMAND_ACK_TTL_SECONDS"])
    rows = db.session.execute(
        update(DeviceCommand)
        .where(DeviceCommand.device_id == device_id, DeviceCommand.state == CommandState.PENDING)
        .values(state=CommandState.DELIVERED, delivered_at=now, expires_at=ack_by)
        .returning(
            DeviceCommand.id, DeviceCommand.kind, DeviceCommand.params, DeviceCommand.issued_at
        )
        .execution_options(synchronize_session=False)
    ).all()
    rows.sort(key=lambda row: row.id)
    events = [
        _event_of(device_id, uid, row.id, row.kind, EventKind.COMMAND_EXPIRED, now)
        for row in expired
    ]
    events += [
        _event_of(device_id, uid, row.id, row.kind, EventKind.COMMAND_DELIVERED, now)
        for row in rows
    ]
    record_events(events)
    return tuple(IssuedCommand(row.id, row.kind, row.params or {}, row.issued_at) for row in rows)


# --- the sweep's side -------------------------------------------------------------


def expire_commands(now: datetime) -> int:
    """Settle commands past their TTL (uncommitted): pending ones expire, delivered ones
    without an ack become unacknowledged. The number settled."""
    expired = db.session.execute(_settle(_pending_due(now), CommandState.EXPIRED)).all()
    silent = db.session.execute(
        _settle(
            and_(DeviceCommand.state == CommandState.DELIVERED, DeviceCommand.expires_at <= now),
            CommandState.UNACKNOWLEDGED,
        )
    ).all()
    rows = [(row, EventKind.COMMAND_EXPIRED) for row in expired]
    rows += [(row, EventKind.COMMAND_UNACKNOWLEDGED) for row in silent]
    if not rows:
        return 0
    uids = _touch_devices(sorted({row.device_id for row, _ in rows}), now)
    record_events(
        [
            _event_of(row.device_id, uids[row.device_id], row.id, row.kind, kind, now)
            for row, kind in rows
        ]
    )
    return len(rows)


# Ids per statement: under PostgreSQL's 65,535 bind parameters, however many settle at once.
TOUCH_CHUNK = 10_000


def _touch_devices(device_ids: list[int], now: datetime) -> dict[int, str]:
    """Move these devices' changed_at, so the grid's poll redraws their command; their uids."""
    uids: dict[int, str] = {}
    for start in range(0, len(device_ids), TOUCH_CHUNK):
        touched = db.session.execute(
            update(Device)
            .where(Device.id.in_(device_ids[start : start + TOUCH_CHUNK]))
            .values(changed_at=now)
            .returning(Device.id, Device.uid)
            .execution_options(synchronize_session=False)
        )
        uids.update((device_id, uid) for device_id, uid in touched)
    return uids


def _pending_due(now: datetime) -> Any:
    return and_(DeviceCommand.state == CommandState.PENDING, DeviceCommand.expires_at <= now)


def _settle(condition: Any, state: CommandState) -> Any:
    return (
        update(DeviceCommand)
        .where(condition)
        .values(state=state)
        .returning(DeviceCommand.id, DeviceCommand.device_id, DeviceCommand.kind)
        .execution_options(synchronize_session=False)
    )


# --- events -----------------------------------------------------------------------

_REASONS = {
    EventKind.COMMAND_REQUESTED: (Source.OPERATOR, "{kind} requested"),
    EventKind.COMMAND_REPLACED: (Source.OPERATOR, "pending {kind} replaced by a newer request"),
    EventKind.COMMAND_DELIVERED: (Source.DEVICE, "{kind} delivered with a heartbeat"),
    EventKind.COMMAND_ACKNOWLEDGED: (Source.DEVICE, "{kind} acknowledged"),
    EventKind.COMMAND_EXPIRED: (Source.SYSTEM, "{kind} expired before a heartbeat collected it"),
    EventKind.COMMAND_UNACKNOWLEDGED: (
        Source.SYSTEM,
        "{kind} delivered but not acknowledged in time",
    ),
}


def _event_of(
    device_id: int,
    uid: str,
    command_id: int,
    kind: str,
    event_kind: EventKind,
    now: datetime,
    actor: str | None = None,
) -> Event:
    source, reason = _REASONS[event_kind]
    return Event(
        device_id=device_id,
        uid=uid,
        kind=event_kind,
        reason=reason.format(kind=kind),
        source=source,
        actor=actor,
        created_at=now,
        details={"command_id": command_id, "command": kind},
    )


def _with(event: Event, **changes: Any) -> Event:
    return replace(event, **changes)
