"""Screenshots a device uploads (for the `screenshot` command), checked to really be images.

Stored in the database, not under instance/: the web tier runs as several
processes on several machines, and every one must serve the image the device
sent to any other; the size cap (SCREENSHOT_MAX_BYTES) and keeping only the
latest few per device keep the table small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, select, update

from fleet.errors import InvalidInput, NotFound, Unauthorized
from fleet.extensions import db
from fleet.models import Device, DeviceCommand, Screenshot
from fleet.rules import Source
from fleet.services.commands import KNOWN_TO_DEVICE
from fleet.services.events import Event, EventKind, record_events

KEPT_PER_DEVICE = 5
# The content type a client sends is never trusted: the bytes say what they are.
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"


def media_type_of(data: bytes) -> str:
    """'image/png' or 'image/jpeg' from the bytes themselves; InvalidInput for anything else."""
    if data.startswith(PNG_MAGIC) and len(data) > len(PNG_MAGIC) + 12 and b"IEND" in data[-12:]:
        return "image/png"
    if data.startswith(JPEG_MAGIC) and data.rstrip(b"\x00").endswith(JPEG_END):
        return "image/jpeg"
    raise InvalidInput("the body must be a complete PNG or JPEG image", {"field": "body"})


def store_screenshot(
    token_hash: str, data: bytes, command_id: str | None, now: datetime
) -> Screenshot:
    """Store the image from the device holding the token; Unauthorized for none."""
    device = db.session.execute(
        select(Device.id, Device.uid).where(Device.token_hash == token_hash)
    ).one_or_none()
    if device is None:
        raise Unauthorized("unknown or rotated device token")
    limit = current_app.config["SCREENSHOT_MAX_BYTES"]
    if len(data) > limit:
        raise InvalidInput(f"the image must be at most {limit} bytes", {"field": "body"})
    media_type = media_type_of(data)
    command = _command_of(device.id, command_id)
    shot = Screenshot(
        device_id=device.id,
        command_id=command,
        media_type=media_type,
        size=len(data),
        data=data,
        taken_at=now,
    )
    db.session.add(shot)
    db.session.flush()
    _keep_latest(device.id)
    # The device page polls for rows changed since its last look.
    db.session.execute(
        update(Device)
        .where(Device.id == device.id)
        .values(changed_at=now)
        .execution_options(synchronize_session=False)
    )
    record_events(
        [
            Event(
                device_id=device.id,
                uid=device.uid,
                kind=EventKind.SCREENSHOT_UPLOADED,
                reason=f"screenshot uploaded ({media_type}, {len(data)} bytes)",
                source=Source.DEVICE,
                created_at=now,
                details={"screenshot_id": shot.id, "command_id": command},
            )
        ]
    )
    db.session.commit()
    return shot


def _command_of(device_id: int, command_id: str | None) -> int | None:
    if command_id is None:
        return None
    if not command_id.isdigit() or len(command_id) > 18:
        raise InvalidInput("command_id must be a command's id", {"field": "command_id"})
    found = db.session.scalar(
        select(DeviceCommand.id).where(
            DeviceCommand.id == int(command_id),
            DeviceCommand.device_id == device_id,
            DeviceCommand.kind == "screenshot",
            DeviceCommand.state.in_(KNOWN_TO_DEVICE),
        )
    )
    if found is None:
        raise InvalidInput(
            "command_id names no screenshot command this device was given",
            {"field": "command_id"},
        )
    return found


def _keep_latest(device_id: int) -> None:
    keep = (
        select(Screenshot.id)
        .where(Screenshot.device_id == device_id)
        .order_by(Screenshot.id.desc())
        .limit(KEPT_PER_DEVICE)
    )
    db.session.execute(
        delete(Screenshot).where(Screenshot.device_id == device_id, Screenshot.id.not_in(keep))
    )


@dataclass(frozen=True)
class ScreenshotInfo:
    id: int
    media_type: str
    size: int
    taken_at: datetime


def latest_screenshot(device_id: int) -> ScreenshotInfo | None:
    """What the device page shows of the newest screenshot (not its bytes), or None."""
    row = db.session.execute(
        select(Screenshot.id, Screenshot.media_type, Screenshot.size, Screenshot.taken_at)
        .where(Screenshot.device_id == device_id)
        .order_by(Screenshot.id.desc())
        .limit(1)
    ).first()
    return None if row is None else ScreenshotInfo(*row)


def screenshot_image(uid: str, screenshot_id: int) -> tuple[bytes, str]:
    """A device's stored image and its media type; NotFound if it has no such screenshot."""
    row = db.session.execute(
        select(Screenshot.data, Screenshot.media_type)
        .join(Device, Device.id == Screenshot.device_id)
        .where(Device.uid == uid, Screenshot.id == screenshot_id)
    ).first()
    if row is None:
        raise NotFound("no such screenshot")
    return row.data, row.media_type
