"""Operating hours and maintenance windows (issue 16): what the schedule tick reads.

A site has no table of its own (`device.site` is a plain string), so a site's
hours are keyed by its name; a device's own hours override its site's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fleet.extensions import db
from fleet.timeutil import UTCDateTime


class OperatingHours(db.Model):
    """A site's (or one device's) schedule, in the form `fleet.schedules.Schedule` reads."""

    __tablename__ = "operating_hours"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str | None] = mapped_column(String(200), unique=True)
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), unique=True
    )
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Bumped by every change: the tick's per-site cache keys on it, so a change
    # of one site's hours invalidates that site alone.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(200))


class MaintenanceWindow(db.Model):
    """Expected downtime for a site, some devices, or a saved fleet filter (a grid URL query)."""

    __tablename__ = "maintenance_window"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str | None] = mapped_column(String(200))
    uids: Mapped[list[str] | None] = mapped_column(JSON)
    fleet_filter: Mapped[str | None] = mapped_column(String(1000))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cron: Mapped[str | None] = mapped_column(String(120))
    rrule: Mapped[str | None] = mapped_column(String(500))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(200))
    # Whether the tick last found it on: its opening and closing are logged once each.
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when it is over for good (its end passed, or ended early): the tick reads only the others.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_maintenance_window_closed", "closed_at"),)
