"""The data model. Only `fleet.services` assigns a device's status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.extensions import db
from fleet.timeutil import UTCDateTime

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


# A device's severity rank, problems first: the fleet page's default sort
# (fleet/services/queries.py) orders by exactly this text, so the index below serves it.
SEVERITY_SQL = "CASE status WHEN 'disconnected' THEN 0 WHEN 'temporarily_offline' THEN 1 ELSE 2 END"


class Device(db.Model):
    __tablename__ = "device"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    site: Mapped[str | None] = mapped_column(String(200), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)

    status: Mapped[str] = mapped_column(String(32), index=True)
    status_reason: Mapped[str] = mapped_column(String(300))
    status_source: Mapped[str] = mapped_column(String(32))
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Bumped by every change of status or reconnect state: concurrent writers
    # compare-and-set on it, so a race ends in one consistent state, never a lost update.
    revision: Mapped[int] = mapped_column(Integer, default=0)

    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When this device, silent from its last heartbeat, is due for each timeout.
    offline_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    disconnect_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Anything a person would see changed (not a heartbeat that changes nothing):
    # the dashboard's poll asks for rows changed since its last poll.
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    battery_level: Mapped[float | None] = mapped_column(Float)
    wifi_strength: Mapped[int | None] = mapped_column(Integer)
    app_version: Mapped[str | None] = mapped_column(String(64))
    uptime_seconds: Mapped[int | None] = mapped_column(BigInteger)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_address: Mapped[str | None] = mapped_column(String(64))
    telemetry_sampled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    heartbeat_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    grace_period_seconds: Mapped[int | None] = mapped_column(Integer)
    disconnect_after_seconds: Mapped[int | None] = mapped_column(Integer)

    reconnect_state: Mapped[str | None] = mapped_column(String(16))
    reconnect_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reconnect_requested_by: Mapped[str | None] = mapped_column(String(200))
    reconnect_delay_seconds: Mapped[int | None] = mapped_column(Integer)
    reconnect_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    reconnect_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # True while a command (other than reconnect) waits for the next heartbeat:
    # the common heartbeat's one statement turns such a device away to the
    # planner, so a device with nothing pending never reads the command table.
    commands_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An operator's leave for the uid to enrol again without its current token
    # (a kiosk reset to factory settings), until this time; used once.
    reenrolment_allowed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reenrolment_allowed_by: Mapped[str | None] = mapped_column(String(200))

    # Whether the device is expected off now ("off_hours", "maintenance" or None),
    # kept by the schedule tick so the grid and sweep read a column, not a schedule;
    # each change is also an `expected_off` event, from which availability is folded.
    expected_off: Mapped[str | None] = mapped_column(String(16), index=True)
    expected_off_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the device last became expected on again, kept until the opening check
    # has seen it beat or recorded its silence ("expected at 08:00, silent since 21:03").
    expected_on_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    ping_reachable: Mapped[bool | None] = mapped_column(Boolean)
    ping_latency_ms: Mapped[float | None] = mapped_column(Float)
    ping_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Indexed: the fleet page asks whether any ping result came lately (its Ping column).
    ping_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_device_severity", text(f"({SEVERITY_SQL})"), "last_heartbeat_at", "uid"),
    )


class DeviceEvent(db.Model):
    """One status transition or operator action: the device's event log."""

    __tablename__ = "device_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(200))
    heartbeat_age_seconds: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The device's expected-off state when a status event was recorded: such
    # events do not count toward flapping (fleet/services/queries.py).
    expected_off: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (
        Index("ix_device_event_device_created", "device_id", "created_at"),
        Index("ix_device_event_kind_created", "kind", "created_at"),
    )


class TelemetrySample(db.Model):
    """Battery and wifi over time, sampled sparsely so storage stays bounded."""

    __tablename__ = "telemetry_sample"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    battery_level: Mapped[float | None] = mapped_column(Float)
    wifi_strength: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_telemetry_device_recorded", "device_id", "recorded_at"),)


class User(db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Named by every session cookie; bumped to end all of the account's sessions
    # (logout, password change, deactivation), since a signed cookie cannot be recalled.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ServiceToken(db.Model):
    """A token for the admin APIs, stored hashed, with space-separated scopes."""

    __tablename__ = "service_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SweepRun(db.Model):
    """A record of each timeout sweep, for the dashboard and `flask doctor`."""

    __tablename__ = "sweep_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    transitions: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    runner: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Lease(db.Model):
    """A named lock with an expiry, for when there is no Redis to hold it."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BulkAction(db.Model):
    """A bulk action over every device a fleet view matches, done a chunk at a time.

    Each chunk commits with the progress it made (`done`, `last_device_id`), so
    a run whose worker died is resumed where it stopped, not started over.
    """

    __tablename__ = "bulk_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "reconnect" or a command kind
    actor: Mapped[str] = mapped_column(String(200))
    view: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A command's params (its base delay); None for a bulk reconnect.
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    last_device_id: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeviceCommand(db.Model):
    """A request to a device, carried in one heartbeat reply and acknowledged in a later one.

    pending -> delivered -> ok | failed | unacknowledged (no ack within the TTL);
    pending -> expired (never collected within the TTL) | replaced (by a newer
    request of the same kind).
    """

    __tablename__ = "device_command"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index("ix_device_command_device_state", "device_id", "state"),
        Index("ix_device_command_state_expires", "state", "expires_at"),
    )


class Screenshot(db.Model):
    """A device's uploaded screen, kept in the database so every web process serves it."""

    __tablename__ = "screenshot"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    command_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_command.id", ondelete="SET NULL")
    )
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_screenshot_device_taken", "device_id", "taken_at"),)
