"""Helpers for availability tests: events written as the services write them, and the naive fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from fleet.availability_models import AvailabilityDay, AvailabilityHour, AvailabilitySiteHour
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.services.availability.fold import FOLDED_KINDS, Seconds
from fleet.services.events import expected_off_event, record_events, status_event


def move(device: Device, to_status: str, now: datetime) -> None:
    """A status change written as the services write one: the column and its event together."""
    row = db.session.get(Device, device.id)
    record_events(
        [
            status_event(
                device.id,
                device.uid,
                row.status,
                to_status,
                reason="test",
                source="system",
                now=now,
                age=None,
            )
        ]
    )
    db.session.execute(update(Device).where(Device.id == device.id).values(status=to_status))
    db.session.commit()


def expect_off(device: Device, state: str | None, now: datetime) -> None:
    """An expected-off change as the schedule tick writes it (issue 16's column and event)."""
    record_events([expected_off_event(device.id, device.uid, state, reason="test", now=now)])
    db.session.execute(
        update(Device)
        .where(Device.id == device.id)
        .values(expected_off=state, expected_off_since=now if state else None)
    )
    db.session.commit()


def naive_buckets(device_id: int, period: str, end: datetime) -> dict[Any, Seconds]:
    """Seconds per UTC day or hour recomputed from the raw events alone, up to `end`."""
    device = db.session.get(Device, device_id)
    events = db.session.execute(
        select(DeviceEvent)
        .where(DeviceEvent.device_id == device_id, DeviceEvent.kind.in_(FOLDED_KINDS))
        .order_by(DeviceEvent.created_at, DeviceEvent.id)
    ).scalars()
    return naive_fold(list(events), device.created_at, device.status, period)


def naive_fold(events: list[Any], created_at: datetime, current: str, period: str) -> dict:
    """A deliberately plain fold sharing no code with the rollups: walk events, cut at buckets."""
    step = timedelta(days=1) if period == "day" else timedelta(hours=1)
    statuses = [e for e in events if e.kind in ("status", "registered")]
    status = (statuses[0].from_status or statuses[0].to_status) if statuses else current
    off, cursor = None, created_at
    totals: dict[Any, Seconds] = {}
    for event in events:
        at = max(event.created_at, cursor)
        where = "off_hours" if off else status
        while cursor < at:
            if period == "day":
                bucket_start = datetime(cursor.year, cursor.month, cursor.day, tzinfo=UTC)
            else:
                bucket_start = cursor.replace(minute=0, second=0, microsecond=0)
            upper = min(bucket_start + step, at)
            key = bucket_start.date() if period == "day" else bucket_start
            totals.setdefault(key, Seconds()).add(where, (upper - cursor).total_seconds())
            cursor = upper
        if event.kind == "expected_off":
            off = (event.details or {}).get("expected_off")
        else:
            status = event.to_status
    return totals


def stored_buckets(device_id: int, period: str) -> dict[Any, Seconds]:
    model = AvailabilityDay if period == "day" else AvailabilityHour
    key = model.day if period == "day" else model.hour
    rows = db.session.execute(select(model).where(model.device_id == device_id)).scalars()
    return {
        getattr(row, key.key): Seconds(
            row.connected_seconds,
            row.temporarily_offline_seconds,
            row.disconnected_seconds,
            row.off_hours_seconds,
        )
        for row in rows
    }


def rounded(buckets: dict[Any, Seconds]) -> dict[Any, tuple[float, ...]]:
    """To the millisecond, dropping empty buckets: what 'agree to the second' compares."""
    return {
        key: tuple(round(v, 3) for v in s.as_dict().values())
        for key, s in buckets.items()
        if any(round(v, 3) for v in s.as_dict().values())
    }


def site_hours() -> dict[tuple[str, datetime], tuple[float, ...]]:
    """The stored site hour rows, to the millisecond, leaving out those summing to nothing."""
    rows = db.session.execute(select(AvailabilitySiteHour)).scalars()
    return _nonzero({(row.site, row.hour): _seconds_of(row) for row in rows})


def device_hours_per_site() -> dict[tuple[str, datetime], tuple[float, ...]]:
    """The device hour rows summed per current site and hour, as the site rows should hold them."""
    totals: dict[tuple[str, datetime], list[float]] = {}
    rows = db.session.execute(select(AvailabilityHour, Device.site).join(Device)).all()
    for hour, site in rows:
        total = totals.setdefault((site or "", hour.hour), [0.0] * 5)
        for index, value in enumerate(_seconds_of(hour)):
            total[index] += value
    return _nonzero({key: tuple(values) for key, values in totals.items()})


def _seconds_of(row: Any) -> tuple[float, ...]:
    return tuple(getattr(row, f"{name}_seconds") for name in SECONDS_NAMES)


def _nonzero(rows: dict[Any, tuple[float, ...]]) -> dict[Any, tuple[float, ...]]:
    rounded_rows = {key: tuple(round(v, 3) for v in values) for key, values in rows.items()}
    return {key: values for key, values in rounded_rows.items() if any(values)}


SECONDS_NAMES = ("connected", "temporarily_offline", "disconnected", "off_hours", "expected_on")
