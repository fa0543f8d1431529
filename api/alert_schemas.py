"""Schemas of the alerts' admin API (incidents, channels), declared once."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.admin_schemas import QueryString
from api.schemas import RequestBody, Schema
from fleet.services.alerts.channels import MAX_URL, ChannelInfo
from fleet.services.alerts.incidents import MAX_NOTE, IncidentView

IncidentState = Literal["pending", "open", "acknowledged", "resolved"]


class IncidentListQuery(QueryString):
    state: IncidentState | None = None
    limit: int = Field(default=100, ge=1, le=500)


class NotificationOut(Schema):
    id: int
    channel: str | None = Field(description="The channel's name; null once it was removed.")
    kind: Literal["opened", "reminder", "resolved", "test", "monitoring_gap"]
    state: Literal["queued", "sending", "sent", "retrying", "failed", "cancelled"]
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


class IncidentOut(Schema):
    id: int
    rule: str
    kind: str
    site: str | None
    device_uids: list[str]
    state: IncidentState
    opened_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    notifications: list[NotificationOut]


class IncidentListResponse(Schema):
    items: list[IncidentOut]


class AcknowledgeRequest(RequestBody):
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class ChannelOut(Schema):
    name: str
    kind: Literal["apprise", "webhook"]
    url: str = Field(description="Masked: the credentials in a channel URL are never returned.")
    failing: bool = Field(description="The last 3 or more deliveries all failed.")
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None


class ChannelListResponse(Schema):
    items: list[ChannelOut]


class ChannelRequest(RequestBody):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=MAX_URL)


class ChannelCreated(ChannelOut):
    signing_secret: str | None = Field(
        description="A webhook's signing secret when Pulseboard made it: shown this once."
    )


def incident_out(view: IncidentView, channel_names: dict[int, str]) -> IncidentOut:
    incident = view.incident
    return IncidentOut(
        id=incident.id,
        rule=incident.rule_name,
        kind=incident.kind,
        site=incident.site,
        device_uids=view.device_uids,
        state=incident.state,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        acknowledged_at=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        note=incident.ack_note,
        notifications=[
            NotificationOut(
                id=row.id,
                channel=channel_names.get(row.channel_id),
                kind=row.kind,
                state=row.state,
                attempts=row.attempts,
                last_error=row.last_error,
                next_attempt_at=row.next_attempt_at
                if row.state in ("queued", "retrying")
                else None,
                sent_at=row.sent_at,
            )
            for row in view.notifications
        ],
    )


def channel_out(info: ChannelInfo) -> ChannelOut:
    return ChannelOut(
        name=info.name,
        kind=info.kind,
        url=info.masked_url,
        failing=info.failing,
        consecutive_failures=info.consecutive_failures,
        last_error=info.last_error,
        last_success_at=info.last_success_at,
    )
