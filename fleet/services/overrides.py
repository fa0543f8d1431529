"""Per-device threshold overrides (interval I, grace G, disconnect-after D).

A change is validated against the rules (D > I + G on the resolved values),
moves the device's stored deadlines so the sweep sees the new thresholds at
once, and is recorded as a `settings_changed` event with the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from fleet import rules
from fleet.errors import DeviceNotFound, InvalidInput
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import Source
from fleet.services.device_state import (
    compare_and_set,
    deadline_values,
    retry_on_conflict,
    thresholds_of,
)
from fleet.services.events import Event, EventKind, record_events

FIELDS = ("heartbeat_interval_seconds", "grace_period_seconds", "disconnect_after_seconds")
MAX_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class Overrides:
    """Per-device values; None means the fleet default."""

    heartbeat_interval_seconds: int | None = None
    grace_period_seconds: int | None = None
    disconnect_after_seconds: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in FIELDS}


def validate(overrides: Overrides) -> rules.Thresholds:
    """The resolved thresholds, or InvalidInput naming what is wrong."""
    for name, value in overrides.as_dict().items():
        minimum = 0 if name == "grace_period_seconds" else 1
        if value is not None and not minimum <= value <= MAX_SECONDS:
            raise InvalidInput(
                f"{name} must be between {minimum} and {MAX_SECONDS}", {"field": name}
            )
    thresholds = thresholds_of(overrides)
    if not thresholds.is_valid():
        raise InvalidInput(
            "disconnect-after must be greater than interval + grace "
            f"(got D={thresholds.disconnect_after}, I+G={thresholds.offline_after})",
            {"field": "disconnect_after_seconds"},
        )
    return thresholds


def set_overrides(uid: str, overrides: Overrides, actor: str, now: datetime) -> Device:
    """Store a device's overrides, move its deadlines and record who changed what."""
    thresholds = validate(overrides)

    def attempt(_: int) -> Device | None:
        row = db.session.execute(
            select(Device.id, Device.revision, Device.last_heartbeat_at, *_columns()).where(
                Device.uid == uid
            )
        ).one_or_none()
        if row is None:
            raise DeviceNotFound(f"no device with uid {uid!r}", {"uid": uid})
        before = {name: getattr(row, name) for name in FIELDS}
        values: dict[str, Any] = {
            **overrides.as_dict(),
            **deadline_values(row.last_heartbeat_at, thresholds),
            "revision": row.revision + 1,
            "changed_at": now,
        }
        # Compare-and-set on revision and heartbeat time: a heartbeat racing us
        # either sees the new thresholds or makes us retry, so deadlines never mix
        # old and new.
        if not compare_and_set(row, values):
            return None
        record_events([_settings_event(row.id, uid, before, overrides, actor, now)])
        db.session.commit()
        return db.session.execute(select(Device).where(Device.id == row.id)).scalar_one()

    return retry_on_conflict(attempt)


def _columns() -> tuple[Any, ...]:
    return tuple(getattr(Device, name) for name in FIELDS)


def _settings_event(
    device_id: int,
    uid: str,
    before: dict[str, int | None],
    overrides: Overrides,
    actor: str,
    now: datetime,
) -> Event:
    after = overrides.as_dict()
    changed = ", ".join(f"{name}={after[name]}" for name in FIELDS if after[name] != before[name])
    return Event(
        device_id=device_id,
        uid=uid,
        kind=EventKind.SETTINGS_CHANGED,
        reason=f"thresholds changed: {changed or 'no change'}",
        source=Source.OPERATOR,
        actor=actor,
        created_at=now,
        details={"before": before, "after": after},
    )
