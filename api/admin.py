"""The admin APIs: ping coordination (scope `ping`) and integrations (`read`, `operate`).

Every endpoint takes a service token. An unknown or revoked token is a 401, a
valid token without the endpoint's scope a 403. Device tokens never work here,
and service tokens never work on the device API: each kind is looked up in its
own table, and the prefixes differ.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from api.admin_schemas import (
    BulkActionOut,
    BulkCommandRequest,
    CommandCreated,
    CommandDetail,
    CommandListResponse,
    CommandRequest,
    DeviceListQuery,
    DeviceListResponse,
    DeviceOut,
    NeedingPingQuery,
    NeedingPingResponse,
    PingBatchItem,
    PingBatchItemError,
    PingBatchRequest,
    PingBatchResponse,
    PingOutcomeOut,
    PingRequest,
    PingTargetOut,
    ReconnectRequest,
    ReconnectResponse,
    bulk_action_out,
    command_detail,
    device_out,
    reconnect_out,
)
from api.auth import bearer_token, refuse_credentials
from api.body import parse_body
from api.errors import invalid_fields
from api.spec import describe
from fleet.errors import FleetError, Forbidden
from fleet.services import (
    bulk,
    commands,
    device_state,
    pings,
    queries,
    reconnects,
    service_tokens,
)
from fleet.services.service_tokens import ServiceIdentity
from fleet.timeutil import utcnow
from jobs.bulk import start_in_background

View = TypeVar("View", bound=Callable[..., Any])
Query = TypeVar("Query", bound=BaseModel)

_UNSET = object()
_CACHE_KEY = "pulseboard.service_identity"
SERVICE_ERRORS = (401, 403, 429, 503)


def authenticated_service() -> ServiceIdentity | None:
    """The identity behind the presented service token, looked up once per request."""
    cached = request.environ.get(_CACHE_KEY, _UNSET)
    if cached is _UNSET:
        token = bearer_token()
        cached = service_tokens.authenticate(token, utcnow()) if token else None
        request.environ[_CACHE_KEY] = cached
    return cached


def require_service(scope: str) -> Callable[[View], View]:
    """Admit only a valid service token holding `scope`; failed credentials count per address."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            identity = authenticated_service()
            if identity is None:
                refuse_credentials("missing, unknown or revoked service token")
            if scope not in identity.scopes:
                raise Forbidden(
                    f"this token lacks the {scope!r} scope",
                    {"required_scope": scope, "token_scopes": sorted(identity.scopes)},
                )
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def parse_query(schema: type[Query]) -> Query:
    """The query string validated against `schema` (a bad parameter is a 422 naming it)."""
    return schema.model_validate(request.args.to_dict())


def identity() -> ServiceIdentity:
    """The service identity admitted by `require_service`."""
    return request.environ[_CACHE_KEY]


# --- ping coordination ----------------------------------------------------------


@describe(
    "Devices with a stale heartbeat and no recent ping, with their last known address",
    query=NeedingPingQuery,
    response=NeedingPingResponse,
    auth="service:ping",
    errors=(*SERVICE_ERRORS, 422),
)
@require_service("ping")
def devices_needing_ping():
    query = parse_query(NeedingPingQuery)
    page = pings.devices_needing_ping(utcnow(), query.limit, query.after)
    items = [
        PingTargetOut(
            uid=target.uid,
            address=target.address,
            status=target.status,
            last_heartbeat_at=target.last_heartbeat_at,
            last_ping_reachable=target.ping_reachable,
            last_ping_checked_at=target.ping_checked_at,
        )
        for target in page.items
    ]
    body = NeedingPingResponse(items=items, next_after=page.next_after)
    return jsonify(body.model_dump(mode="json"))


def _ping_result(body: PingRequest) -> pings.PingResult:
    return pings.PingResult(body.uid, body.reachable, body.latency_ms, body.checked_at)


def _outcome_out(outcome: pings.PingOutcome) -> PingOutcomeOut:
    return PingOutcomeOut(
        uid=outcome.uid,
        applied=outcome.applied,
        outcome="applied" if outcome.applied else "ignored",
        reason=outcome.reason,
        status=outcome.status,
        status_changed=outcome.status_changed,
    )


@describe(
    "Report one ping result; answers whether it was applied and why",
    request=PingRequest,
    response=PingOutcomeOut,
    auth="service:ping",
    errors=(*SERVICE_ERRORS, 400, 404, 413, 422),
)
@require_service("ping")
def ping():
    body = parse_body(PingRequest)
    outcome = pings.apply_ping(_ping_result(body), utcnow(), identity().actor)
    return jsonify(_outcome_out(outcome).model_dump(mode="json"))


@describe(
    "Report up to 500 ping results, answered item by item; a bad item is answered in place",
    request=PingBatchRequest,
    response=PingBatchResponse,
    auth="service:ping",
    errors=(*SERVICE_ERRORS, 400, 413, 422),
)
@require_service("ping")
def ping_batch():
    batch = parse_body(PingBatchRequest)
    parsed = [_parse_item(index, item) for index, item in enumerate(batch.results)]
    valid = [item for item in parsed if isinstance(item, pings.PingResult)]
    answers = iter(pings.apply_pings(valid, utcnow(), identity().actor))
    items = [
        _batch_item(index, item.uid, next(answers)) if isinstance(item, pings.PingResult) else item
        for index, item in enumerate(parsed)
    ]
    body = PingBatchResponse(
        results=items,
        applied=sum(item.outcome == "applied" for item in items),
        ignored=sum(item.outcome == "ignored" for item in items),
        errors=sum(item.outcome == "error" for item in items),
    )
    return jsonify(body.model_dump(mode="json"))


def _parse_item(index: int, raw: Any) -> pings.PingResult | PingBatchItem:
    """A valid result, or the error answered in its place."""
    uid = raw.get("uid") if isinstance(raw, dict) else None
    uid = uid if isinstance(uid, str) else None
    if not isinstance(raw, dict):
        return _error_item(
            index, uid, code="malformed_item", message="an item must be a JSON object"
        )
    try:
        return _ping_result(PingRequest.model_validate(raw))
    except ValidationError as invalid:
        return _error_item(index, uid, **invalid_fields(invalid))


def _batch_item(index: int, uid: str, answer: pings.PingOutcome | FleetError) -> PingBatchItem:
    if isinstance(answer, FleetError):
        return _error_item(
            index, uid, code=answer.code, message=answer.message, details=answer.details
        )
    return PingBatchItem(index=index, **_outcome_out(answer).model_dump())


def _error_item(index: int, uid: str | None, **error: Any) -> PingBatchItem:
    """The batch's answer for an item that was not applied."""
    return PingBatchItem(
        index=index, uid=uid, outcome="error", applied=False, error=PingBatchItemError(**error)
    )


# --- integrations -------------------------------------------------------------


@describe(
    "Devices matching the dashboard's filters, paginated, with the total",
    query=DeviceListQuery,
    response=DeviceListResponse,
    auth="service:read",
    errors=(*SERVICE_ERRORS, 422),
)
@require_service("read")
def list_devices():
    query = parse_query(DeviceListQuery)
    now = utcnow()
    page = queries.list_devices(queries.DeviceFilter(**query.model_dump()), now)
    body = DeviceListResponse(
        items=[device_out(device, flaps, page.flap.threshold, now) for device, flaps in page.items],
        total=page.total,
        page=page.page,
        per_page=page.per_page,
        pages=page.pages,
    )
    return jsonify(body.model_dump(mode="json"))


@describe(
    "One device: status and why, last heartbeat, telemetry, ping diagnosis, reconnect, flapping",
    response=DeviceOut,
    auth="service:read",
    errors=(*SERVICE_ERRORS, 404),
)
@require_service("read")
def get_device(uid: str):
    now = utcnow()
    device = device_state.get_device(uid)
    flaps = queries.flap_count(device.id, now)
    body = device_out(device, flaps, queries.flap_settings().threshold, now)
    return jsonify(body.model_dump(mode="json"))


@describe(
    "Ask a device to reconnect on its next heartbeat (the dashboard's Reconnect button)",
    request=ReconnectRequest,
    response=ReconnectResponse,
    status=202,
    auth="service:operate",
    errors=(*SERVICE_ERRORS, 400, 404, 413, 422),
)
@require_service("operate")
def reconnect(uid: str):
    body = parse_body(ReconnectRequest)
    now = utcnow()
    device = reconnects.request_reconnect(uid, identity().actor, now, body.delay_seconds)
    response = ReconnectResponse(uid=device.uid, reconnect=reconnect_out(device, now))
    return jsonify(response.model_dump(mode="json")), 202


@describe(
    "Ask a device for a command on its next heartbeat; replaces a pending one of the kind",
    request=CommandRequest,
    response=CommandCreated,
    status=201,
    auth="service:operate",
    errors=(*SERVICE_ERRORS, 400, 404, 413, 422),
)
@require_service("operate")
def request_command(uid: str):
    body = parse_body(CommandRequest)
    requested = commands.request_command(uid, body.kind, body.params, identity().actor, utcnow())
    response = CommandCreated(
        **command_detail(requested.command), replaced_id=requested.replaced_id
    )
    return jsonify(response.model_dump(mode="json")), 201


@describe(
    "A device's commands, newest first, with their state and the device's result",
    response=CommandListResponse,
    auth="service:read",
    errors=(*SERVICE_ERRORS, 404),
)
@require_service("read")
def list_commands(uid: str):
    items = [CommandDetail(**command_detail(c)) for c in commands.list_commands(uid)]
    return jsonify(CommandListResponse(items=items).model_dump(mode="json"))


@describe(
    "Send a command to every device a filter matches, delays spread over a window, a chunk at "
    "a time; poll GET /api/admin/commands/{action_id} for its progress",
    request=BulkCommandRequest,
    response=BulkActionOut,
    status=202,
    auth="service:operate",
    errors=(*SERVICE_ERRORS, 400, 413, 422),
)
@require_service("operate")
def bulk_command():
    body = parse_body(BulkCommandRequest)
    view = queries.DeviceFilter(**body.filter.model_dump())
    action = bulk.request_bulk_command(view, body.kind, body.params, identity().actor, utcnow())
    if action.state == bulk.RUNNING:
        start_in_background(current_app._get_current_object(), action.id)
    return jsonify(bulk_action_out(action).model_dump(mode="json")), 202


@describe(
    "How far a bulk command (or bulk reconnect) is",
    response=BulkActionOut,
    auth="service:read",
    errors=(*SERVICE_ERRORS, 404),
)
@require_service("read")
def bulk_progress(action_id: int):
    action = bulk.get_bulk_action(action_id)
    return jsonify(bulk_action_out(action).model_dump(mode="json"))
