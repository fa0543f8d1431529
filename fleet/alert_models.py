"""The alerts' data model (issue 15): channels, rules, incidents and the notification outbox.

Kept apart from `fleet.models` so the alerting area owns its tables; the
migrations see them through `migrations/env.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.extensions import db
from fleet.models import BigId
from fleet.timeutil import UTCDateTime


class ChannelKind:
    APPRISE = "apprise"
    WEBHOOK = "webhook"


class AlertChannel(db.Model):
    """Where notifications go: an Apprise URL or a signed Pulseboard webhook.

    The URL (and a webhook's signing secret) hold credentials, so they are only
    stored encrypted; `masked_url` is what people and the API see.
    """

    __tablename__ = "alert_channel"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    scheme: Mapped[str] = mapped_column(String(32))
    url_encrypted: Mapped[str] = mapped_column(Text)
    masked_url: Mapped[str] = mapped_column(String(500))
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(200))
    # Reset by every delivery that succeeds: 3 in a row make the channel "failing".
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RuleKind:
    DISCONNECTED = "disconnected"
    NOT_CONNECTED = "not_connected"
    SITE_OUTAGE = "site_outage"
    FLAPPING = "flapping"


RULE_KINDS = (
    RuleKind.DISCONNECTED,
    RuleKind.NOT_CONNECTED,
    RuleKind.SITE_OUTAGE,
    RuleKind.FLAPPING,
)


class AlertRule(db.Model):
    """When to open an incident, for which devices, and whom to tell."""

    __tablename__ = "alert_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    for_seconds: Mapped[int] = mapped_column(Integer, default=0)
    # Scope: the whole fleet (both null), one site, or a saved fleet filter (`q=...&site=...`).
    site: Mapped[str | None] = mapped_column(String(200))
    scope_filter: Mapped[str | None] = mapped_column(String(500))
    percent: Mapped[int | None] = mapped_column(Integer)
    min_devices: Mapped[int | None] = mapped_column(Integer)
    remind_hours: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(200))


class AlertRuleChannel(db.Model):
    __tablename__ = "alert_rule_channel"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rule.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("alert_channel.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class IncidentState:
    PENDING = "pending"  # the condition holds, but not yet for the rule's --for
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ACTIVE_STATES = (IncidentState.PENDING, IncidentState.OPEN, IncidentState.ACKNOWLEDGED)
FIRING_STATES = (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)


class Incident(db.Model):
    """One firing of a rule, for one device or one site."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rule.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    # "device:<id>" or "site:<name>": at most one active incident per rule and subject.
    subject: Mapped[str] = mapped_column(String(260))
    site: Mapped[str | None] = mapped_column(String(200))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    # A device incident folded into its site's outage incident.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("incident.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    ack_note: Mapped[str | None] = mapped_column(String(1000))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Sweeps that ran late (a monitoring gap) open incidents without telling anyone.
    quiet: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index(
            "ux_incident_active_subject",
            "rule_id",
            "subject",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_incident_state_fires", "state", "fires_at"),
        Index("ix_incident_device_state", "device_id", "state"),
        Index("ix_incident_site_state", "site", "state"),
    )


class IncidentDevice(db.Model):
    """The devices an incident names: its own device, or a site outage's silent devices."""

    __tablename__ = "incident_device"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationKind:
    OPENED = "opened"
    REMINDER = "reminder"
    RESOLVED = "resolved"
    TEST = "test"
    MONITORING_GAP = "monitoring_gap"


class DeliveryState:
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELLED = "cancelled"  # folded into a site outage before it was sent


CLAIMABLE_STATES = (DeliveryState.QUEUED, DeliveryState.RETRYING)


class Notification(db.Model):
    """The outbox: one message to one channel, written with the change that caused it."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("alert_channel.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_notification_state_next", "state", "next_attempt_at"),)


class AlertLogKind:
    RULE_ADDED = "rule_added"
    RULE_REMOVED = "rule_removed"
    CHANNEL_ADDED = "channel_added"
    CHANNEL_REMOVED = "channel_removed"
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_ACKNOWLEDGED = "incident_acknowledged"
    INCIDENT_RESOLVED = "incident_resolved"
    MONITORING_GAP = "monitoring_gap"
    # Operating hours and maintenance windows (issue 16).
    SCHEDULE_CHANGED = "schedule_changed"
    MAINTENANCE_CREATED = "maintenance_created"
    MAINTENANCE_OPENED = "maintenance_opened"
    MAINTENANCE_ENDED_EARLY = "maintenance_ended_early"
    MAINTENANCE_CLOSED = "maintenance_closed"


class AlertLog(db.Model):
    """The alerts' part of the events log: rule and channel changes, incidents, gaps, with actor."""

    __tablename__ = "alert_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(200))
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incident.id", ondelete="SET NULL"), index=True
    )
    message: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
