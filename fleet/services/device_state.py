"""The device state every writer shares: snapshots, thresholds, deadlines, compare-and-set.

Races are settled by the database: writers compare-and-set on `Device.revision`
(`UPDATE ... WHERE id = :id AND revision = :seen`) and retry with a fresh read
when another writer won, so concurrent heartbeats, sweeps, pings, reconnect
requests and threshold changes end in one consistent state.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row, select, update

from fleet import rules
from fleet.context import current_application
from fleet.errors import Contention, DeviceNotFound
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import Source, Status, Thresholds
from fleet.services.events import status_event

MAX_ATTEMPTS = 8
CONTENTION = "the device is being updated concurrently; retry shortly"

T = TypeVar("T")

# What a heartbeat needs to know about a device: read with the token lookup,
# so the common heartbeat is one SELECT and one UPDATE.
SNAPSHOT_COLUMNS = (
    Device.id,
    Device.uid,
    Device.token_hash,
    Device.status,
    Device.revision,
    Device.last_heartbeat_at,
    Device.heartbeat_interval_seconds,
    Device.grace_period_seconds,
    Device.disconnect_after_seconds,
    Device.reconnect_state,
    Device.reconnect_expires_at,
    Device.reconnect_delay_seconds,
    Device.commands_pending,
    Device.battery_level,
    Device.wifi_strength,
    Device.app_version,
    Device.telemetry_sampled_at,
)


def fleet_defaults(config: Mapping[str, Any] | None = None) -> Thresholds:
    """The fleet-wide thresholds from `config` (the heartbeat passes the one it read), else the
    app's."""
    config = current_application().config if config is None else config
    return Thresholds(
        interval=config["HEARTBEAT_INTERVAL_SECONDS"],
        grace=config["GRACE_PERIOD_SECONDS"],
        disconnect_after=config["DISCONNECT_AFTER_SECONDS"],
    )


def thresholds_of(device: Any) -> Thresholds:
    """A device's thresholds: fleet defaults with its overrides (works on rows and models)."""
    return rules.resolve_thresholds(
        fleet_defaults(),
        device.heartbeat_interval_seconds,
        device.grace_period_seconds,
        device.disconnect_after_seconds,
    )


def deadline_values(last_heartbeat_at: datetime | None, thresholds: Thresholds) -> dict[str, Any]:
    """The stored deadline columns that follow from a heartbeat time."""
    deadlines = rules.deadlines_for(last_heartbeat_at, thresholds)
    return {"offline_due_at": deadlines.offline_at, "disconnect_due_at": deadlines.disconnect_at}


def get_device(uid: str) -> Device:
    """The device with `uid`, or DeviceNotFound."""
    device = db.session.execute(select(Device).where(Device.uid == uid)).scalar_one_or_none()
    if device is None:
        raise DeviceNotFound(f"no device with uid {uid!r}", {"uid": uid})
    return device


def read_snapshot(device_id: int) -> Row:
    """Re-read a device after a lost compare-and-set, locking its row.

    The optimistic first try costs no lock; once a writer has lost a race, the
    row lock (PostgreSQL; SQLite serialises writers anyway) makes sure it
    cannot keep losing to a busy device.
    """
    query = select(*SNAPSHOT_COLUMNS).where(Device.id == device_id).with_for_update()
    row = db.session.execute(query).one_or_none()
    if row is None:
        raise DeviceNotFound("device no longer exists")
    return row


def compare_and_set(
    seen: Any, values: dict[str, Any], *, same_heartbeat: bool = True, same_sample: bool = False
) -> bool:
    """Apply `values` only if nobody changed the device since `seen` was read.

    A heartbeat that changes no state does not bump the revision, so by default
    the heartbeat time is compared too: deadlines computed from an older
    heartbeat must never overwrite a newer one's. A heartbeat, which sets its
    own time and deadlines, passes `same_heartbeat=False`.
    """
    conditions = [Device.id == seen.id, Device.revision == seen.revision]
    if same_heartbeat:
        conditions.append(Device.last_heartbeat_at.is_not_distinct_from(seen.last_heartbeat_at))
    if same_sample:
        # Two heartbeats that both found a telemetry sample due change no state,
        # so the revision alone would let both in: only one may take the sample.
        conditions.append(
            Device.telemetry_sampled_at.is_not_distinct_from(seen.telemetry_sampled_at)
        )
    result = db.session.execute(
        update(Device)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def retry_on_conflict(attempt: Callable[[int], T | None], contention: str = CONTENTION) -> T:
    """Run `attempt(number)` until it returns something other than None; else Contention.

    An attempt returns None when another writer won the compare-and-set. The
    session is rolled back before the next attempt, which reads the device
    afresh; after MAX_ATTEMPTS lost races the caller is told to retry later.
    """
    for number in range(MAX_ATTEMPTS):
        if number:
            # SQLite has no row lock to wait on: a short random pause lets the
            # writers that keep winning get out of the way.
            time.sleep(random.uniform(0, 0.002 * number))
        result = attempt(number)
        if result is not None:
            return result
        db.session.rollback()
    raise Contention(contention)


def connect(seen: Any, reason: str, now: datetime, values: dict[str, Any], events: list) -> None:
    """Plan the move to connected that only the device itself can cause (DESIGN rule 1)."""
    values.update(
        status=Status.CONNECTED,
        status_reason=reason,
        status_source=Source.DEVICE,
        status_changed_at=now,
    )
    age = rules.heartbeat_age(now, seen.last_heartbeat_at)
    events.append(
        status_event(
            seen.id, seen.uid, seen.status, Status.CONNECTED,
            reason=reason, source=Source.DEVICE, now=now, age=age,
        )
    )  # fmt: skip
