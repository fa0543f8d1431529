"""A made-up past for the demo fleet, so `make run` shows bars and reports of a real fleet.

The simulator enrols its devices afresh, so they have no history. This gives each
device enrolled within the last day `days` days before its enrolment: mostly up,
some with daily drop-outs, a few with a long outage, and the sites that close at
night switched off from 22:00 to 06:00 UTC (expected off, then a short outage
while they boot). The story is written as status and expected-off events like
the services write, and the rollups are then folded from them by the rebuild,
the same code that folds every transaction's events. Seeded: the same every run.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.rules import Source
from fleet.services.availability.rebuild import rebuild
from fleet.services.events import ExpectedOff, expected_off_event, status_event

NIGHT_START, NIGHT_END = 22, 6
FRESH = timedelta(days=1)


def closes_at_night(site: str | None) -> bool:
    """About a third of the sites, always the same ones: those whose name hashes so."""
    return site is not None and zlib.crc32(site.encode()) % 3 == 0


def backfill(days: int, now: datetime, seed: int = 7) -> int:
    """Give the devices enrolled within the last day a past of `days` days; how many got one."""
    devices = db.session.execute(
        select(Device.id, Device.uid, Device.site, Device.created_at).where(
            Device.created_at > now - FRESH
        )
    ).all()
    for device in devices:
        start = device.created_at - timedelta(days=days)
        rng = random.Random(f"{seed}:{device.uid}")
        rows = [event.row() for event in story(device, rng, start, device.created_at)]
        if rows:
            db.session.execute(insert(DeviceEvent.__table__), rows)
        db.session.execute(update(Device).where(Device.id == device.id).values(created_at=start))
    db.session.commit()
    if devices:
        rebuild(device_ids=[device.id for device in devices])
    return len(devices)


def story(device: object, rng: random.Random, start: datetime, end: datetime) -> Iterator:
    """The device's events from `start` to `end`, ending connected and expected on."""
    status = "connected"
    profile = rng.choices(["solid", "shaky", "poor"], [0.7, 0.22, 0.08])[0]
    for at, kind, value in sorted(_happenings(device, rng, profile, start, end), key=_time):
        if at >= end:
            # An outage running past enrolment is cut short there: history never reaches now.
            break
        if kind == "expected_off":
            yield expected_off_event(device.id, device.uid, value, reason="demo history", now=at)
        elif value != status:
            yield _status(device, status, value, at)
            status = value
    if status != "connected":
        yield _status(device, status, "connected", end - timedelta(seconds=1))


def _time(happening: tuple[datetime, str, object]) -> datetime:
    return happening[0]


def _status(device: object, old: str, new: str, at: datetime):
    source = Source.DEVICE if new == "connected" else Source.SYSTEM
    reason = "heartbeat" if new == "connected" else "no heartbeat (demo history)"
    return status_event(device.id, device.uid, old, new, reason=reason, source=source, now=at,
                        age=None)  # fmt: skip


def _happenings(device, rng, profile, start, end) -> Iterator[tuple[datetime, str, object]]:
    if closes_at_night(device.site):
        yield from _nights(start, end)
    outages = {"solid": rng.randint(0, 2), "shaky": rng.randint(6, 14), "poor": rng.randint(3, 6)}
    longest = {"solid": 20, "shaky": 90, "poor": 600}[profile]
    span = (end - start).total_seconds()
    for _ in range(outages[profile]):
        at = start + timedelta(seconds=rng.uniform(0, span - 3600))
        minutes = rng.uniform(2, longest)
        yield from _outage(at, minutes)


def _outage(at: datetime, minutes: float) -> Iterator[tuple[datetime, str, object]]:
    yield at, "status", "temporarily_offline"
    if minutes > 5:
        yield at + timedelta(minutes=4), "status", "disconnected"
    yield at + timedelta(minutes=minutes), "status", "connected"


def _nights(start: datetime, end: datetime) -> Iterator[tuple[datetime, str, object]]:
    """Closed 22:00-06:00 UTC: expected off, silent, then booting for two minutes after opening."""
    night = start.replace(hour=NIGHT_START, minute=0, second=0, microsecond=0)
    while night + timedelta(hours=8, minutes=5) < end:
        if night >= start:
            opening = night + timedelta(hours=(24 - NIGHT_START) + NIGHT_END)
            yield night, "expected_off", ExpectedOff.OFF_HOURS.value
            yield night + timedelta(minutes=2), "status", "temporarily_offline"
            yield night + timedelta(minutes=6), "status", "disconnected"
            yield opening, "expected_off", None
            yield opening + timedelta(minutes=2), "status", "connected"
        night += timedelta(days=1)
