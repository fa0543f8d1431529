"""Availability's tables: rollups per device per UTC day and hour (and per site per hour),
each device's tally, outages.

They are written in the transaction that records the status and expected-off
events (fleet.services.availability.tally), so they are never behind the events
that committed, and a rolled-back transition leaves no trace in them either.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fleet.extensions import db
from fleet.timeutil import UTCDateTime


class _Seconds:
    """Seconds in each tier and off hours; expected on is the three tiers together."""

    connected_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    temporarily_offline_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    disconnected_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    off_hours_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    expected_on_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class AvailabilityDay(_Seconds, db.Model):
    """One device's seconds in one UTC day, up to its tally's `tallied_to`."""

    __tablename__ = "availability_day"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)

    # Reports read a date range across devices; pruning deletes old days.
    __table_args__ = (Index("ix_availability_day_day", "day"),)


class AvailabilityHour(_Seconds, db.Model):
    """One device's seconds in one UTC hour; kept for two days, for the 24 h figures and bars."""

    __tablename__ = "availability_hour"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)

    __table_args__ = (Index("ix_availability_hour_hour", "hour"),)


class AvailabilitySiteHour(_Seconds, db.Model):
    """One site's seconds in one UTC hour: its devices' hour rollups summed ('' for no site).

    The Sites page sorts every site by its 24 h figure. Summed per device that
    reads up to 24 rows a device (a fleet where every device changed state
    today: 240,000 rows for 10,000 devices); per site it is at most 24 a site.
    Every write to the device hour rows applies the same seconds here, under
    the device's tally lock, filed under the device's current site; a device
    that moves site takes its hours along (fleet.services.availability.tally).
    """

    __tablename__ = "availability_site_hour"

    site: Mapped[str] = mapped_column(String(200), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)

    __table_args__ = (Index("ix_availability_site_hour_hour", "hour"),)


class AvailabilityTally(db.Model):
    """How far a device's rollups reach, and its state from then on (the open segment).

    Locked (FOR UPDATE) by each transaction that folds events of the device, so
    two writers of one device's events add their seconds one after the other.
    """

    __tablename__ = "availability_tally"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), primary_key=True
    )
    tallied_to: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(32))
    expected_off: Mapped[str | None] = mapped_column(String(16))
    # When the device's current outage began (expected on and not connected), if in one.
    outage_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Outage(db.Model):
    """A stretch in which a device was expected on and not connected (open: no `ended_at`)."""

    __tablename__ = "outage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The status it began in and the reason of the event that began it.
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    # Why it ended: "connected", "off_hours" or "maintenance"; null while open.
    ended_by: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_outage_device_started", "device_id", "started_at", unique=True),
        Index("ix_outage_started", "started_at"),
    )
