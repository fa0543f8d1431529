"""Bulk actions (reconnect, or any command) over every device a fleet view matches, a chunk
per transaction.

A whole fleet asked to reconnect in one transaction held every row's lock for
as long as the statement took, and heartbeats waited behind it. Here each
chunk locks only its own rows and commits with the run's progress (how many
are done, the last device id), so heartbeats wait at most one chunk, the page
can show how far a run is, and a run whose worker died is resumed where it
stopped. Runs too large for one request go to a background job
(jobs/bulk.py); small ones finish within the request, in chunks all the same.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from fleet.errors import InvalidInput, NotFound
from fleet.extensions import db
from fleet.models import BulkAction
from fleet.services import commands, queries
from fleet.services.commands import PARAM_BOUNDS
from fleet.services.queries import DeviceFilter
from fleet.services.reconnects import store_reconnects

RUNNING = "running"
DONE = "done"
RECONNECT = "reconnect"
MAX_ID = 2**31 - 1  # bulk_action.id is an INTEGER


def start_bulk_reconnect(view: DeviceFilter, actor: str, now: datetime) -> BulkAction:
    """Record a bulk reconnect of every device matching `view`; nothing is asked yet."""
    return _start(view, RECONNECT, None, actor, now)


def start_bulk_command(
    view: DeviceFilter, kind: str, params: dict[str, Any], actor: str, now: datetime
) -> BulkAction:
    """Record a bulk command of every device matching `view`; InvalidInput for a bad request.

    A bulk reconnect stays what it was (the devices' reconnect columns, no
    command rows); any other kind stores a command per device, its delay
    (`params`' delay_seconds, if any, plus the device's place in the spread).
    """
    params = commands.check_request(kind, params)
    if not is_filtered(view):
        raise InvalidInput("a bulk command needs a filtered view", {"field": "filter"})
    return _start(view, kind, None if kind == RECONNECT else params, actor, now)


def request_bulk_command(
    view: DeviceFilter, kind: str, params: dict[str, Any], actor: str, now: datetime
) -> BulkAction:
    """Start a bulk command and, when it is small, run it to its end before returning."""
    action = start_bulk_command(view, kind, params, actor, now)
    return run_bulk_action(action.id, now) if runs_in_the_request(action) else action


def is_filtered(view: DeviceFilter) -> bool:
    """Whether the view narrows the fleet at all (sort and page do not)."""
    return any(
        (
            view.status,
            view.site,
            view.q,
            view.flapping is not None,
            view.reconnect_pending,
            view.attention,
        )
    )


def _start(
    view: DeviceFilter, kind: str, params: dict[str, Any] | None, actor: str, now: datetime
) -> BulkAction:
    total = queries.count_matching(view, now)
    action = BulkAction(
        kind=kind,
        params=params,
        actor=actor,
        view=asdict(view),
        requested_at=now,
        total=total,
        done=0,
        last_device_id=0,
        state=RUNNING,
        updated_at=now,
    )
    db.session.add(action)
    db.session.commit()
    return action


def runs_in_the_request(action: BulkAction) -> bool:
    """True when the run is small enough to finish within the request that started it."""
    return action.total <= current_app.config["BULK_INLINE_MAX"]


def run_bulk_action(action_id: int, now: datetime) -> BulkAction:
    """Run (or resume) a bulk action to its end; every chunk is its own transaction."""
    while run_chunk(action_id, now):
        pass
    return get_bulk_action(action_id)


def run_chunk(action_id: int, now: datetime) -> bool:
    """Do the next chunk of a running action; False once it is finished (or not running).

    1. Read the action's progress and the next chunk of matching devices.
    2. Claim the chunk by compare-and-set on the progress: a second runner of
       the same action (a resumed run racing the original) finds it moved and
       stops, so no device is asked twice.
    3. Store the chunk's requests (reconnects or commands) and commit both together.
    """
    action = get_bulk_action(action_id)
    if action.state != RUNNING:
        return False
    view = DeviceFilter(**action.view)
    size = current_app.config["BULK_CHUNK_SIZE"]
    chunk = queries.matching_devices_after(view, action.requested_at, action.last_device_id, size)
    progress = {"updated_at": now}
    if chunk:
        progress.update(done=action.done + len(chunk), last_device_id=chunk[-1][0])
    else:
        progress.update(state=DONE, finished_at=now)
    claimed = db.session.execute(
        update(BulkAction)
        .where(BulkAction.id == action_id, BulkAction.last_device_id == action.last_device_id)
        .where(BulkAction.state == RUNNING)
        .values(**progress)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return False
    if chunk:
        _store(action, chunk, now)
    db.session.commit()
    return bool(chunk)


def _store(action: BulkAction, chunk: list[tuple[int, str]], now: datetime) -> None:
    if action.kind == RECONNECT:
        base = current_app.config["RECONNECT_DELAY_SECONDS"]
        store_reconnects(_spread(action, chunk, base), action.actor, now, _details(action))
        return
    params = action.params or {}
    base = params.get("delay_seconds", 0)
    # The spread never takes a delay past what a single request may ask for.
    most = PARAM_BOUNDS["delay_seconds"][1]
    commands.store_commands(
        [
            (device_id, uid, {**params, "delay_seconds": min(delay, most)})
            for device_id, uid, delay in _spread(action, chunk, base)
        ],
        action.kind,
        action.actor,
        now,
        _details(action),
    )


def _spread(
    action: BulkAction, chunk: list[tuple[int, str]], base: int
) -> list[tuple[int, str, int]]:
    """The chunk's devices with their delays, spread over the whole run by position."""
    spread = current_app.config["BULK_RECONNECT_SPREAD_SECONDS"]
    # Devices enrolled since the count join the end of the spread.
    total = max(action.total, action.done + len(chunk), 1)
    return [
        (device_id, uid, base + ((action.done + index) * spread) // total)
        for index, (device_id, uid) in enumerate(chunk)
    ]


def _details(action: BulkAction) -> dict[str, object]:
    return {"bulk": True, "bulk_action": action.id, "devices": action.total}


def get_bulk_action(action_id: int) -> BulkAction:
    """The action as stored now; NotFound (404) for an unknown id."""
    # An id past the integer column cannot exist, and PostgreSQL would refuse to compare it.
    in_range = 0 < action_id <= MAX_ID
    action = db.session.get(BulkAction, action_id, populate_existing=True) if in_range else None
    if action is None:
        raise NotFound(f"no bulk action {action_id}")
    return action


def stalled_bulk_actions(now: datetime) -> list[int]:
    """Ids of running actions with no progress for BULK_STALL_SECONDS: their runner died."""
    stalled_since = now - timedelta(seconds=current_app.config["BULK_STALL_SECONDS"])
    query = select(BulkAction.id).where(
        BulkAction.state == RUNNING, BulkAction.updated_at < stalled_since
    )
    return list(db.session.execute(query).scalars())
