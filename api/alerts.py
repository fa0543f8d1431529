"""The alerts' admin API: incidents (scopes `read`, `operate`) and channels (`read`, `admin`)."""

from __future__ import annotations

from flask import jsonify

from api.admin import SERVICE_ERRORS, identity, parse_query, require_service
from api.alert_schemas import (
    AcknowledgeRequest,
    ChannelCreated,
    ChannelListResponse,
    ChannelRequest,
    IncidentListQuery,
    IncidentListResponse,
    IncidentOut,
    channel_out,
    incident_out,
)
from api.body import parse_body
from api.spec import describe
from fleet.services.alerts import channels, incidents
from fleet.timeutil import utcnow


@describe(
    "Incidents, open ones first, with their devices and each notification's delivery state",
    query=IncidentListQuery,
    response=IncidentListResponse,
    auth="service:read",
    errors=(*SERVICE_ERRORS, 422),
)
@require_service("read")
def list_incidents():
    query = parse_query(IncidentListQuery)
    views = incidents.list_incidents(query.state, query.limit)
    names = channels.channel_names()
    body = IncidentListResponse(items=[incident_out(view, names) for view in views])
    return jsonify(body.model_dump(mode="json"))


@describe(
    "Acknowledge an open incident, with an optional note: its reminders stop",
    request=AcknowledgeRequest,
    response=IncidentOut,
    auth="service:operate",
    errors=(*SERVICE_ERRORS, 400, 404, 409, 413, 422),
)
@require_service("operate")
def acknowledge_incident(incident_id: int):
    body = parse_body(AcknowledgeRequest)
    view = incidents.acknowledge_view(incident_id, identity().actor, body.note, utcnow())
    return jsonify(incident_out(view, channels.channel_names()).model_dump(mode="json"))


@describe(
    "Notification channels, their URLs masked, with their delivery health",
    response=ChannelListResponse,
    auth="service:read",
    errors=SERVICE_ERRORS,
)
@require_service("read")
def list_channels():
    body = ChannelListResponse(items=[channel_out(info) for info in channels.list_channels()])
    return jsonify(body.model_dump(mode="json"))


@describe(
    "Add a channel: an Apprise URL or a webhook (webhook:// or webhooks://)",
    request=ChannelRequest,
    response=ChannelCreated,
    status=201,
    auth="service:admin",
    errors=(*SERVICE_ERRORS, 400, 409, 413, 422),
)
@require_service("admin")
def add_channel():
    body = parse_body(ChannelRequest)
    added = channels.add_channel(body.name, body.url, identity().actor, utcnow())
    info = channel_out(channels.info_of(channels.get_channel(added.name)))
    created = ChannelCreated(**info.model_dump(), signing_secret=added.generated_secret)
    return jsonify(created.model_dump(mode="json")), 201


@describe(
    "Remove a channel, its place in every rule, and its unsent notifications",
    status=204,
    auth="service:admin",
    errors=(*SERVICE_ERRORS, 404),
)
@require_service("admin")
def remove_channel(name: str):
    channels.remove_channel(name, identity().actor, utcnow())
    return "", 204
