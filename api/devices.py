"""The device API: enrolment and heartbeats."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request
from flask_limiter.util import get_remote_address
from pydantic import TypeAdapter

from api import bp, ratelimits
from api.auth import bearer_token, refuse_credentials
from api.body import parse_body, read_json_object
from api.schemas import HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse
from api.spec import describe
from fleet.context import current_request
from fleet.errors import Unauthorized
from fleet.extensions import limiter
from fleet.services import devices, heartbeats
from fleet.timeutil import utcnow
from fleet.tokens import hash_token


def bad_credential_limits() -> str:
    return f"{current_app.config['BAD_TOKEN_MAX_PER_MINUTE']} per minute"


def was_refused(response: Response) -> bool:
    """Only failed credentials count against a client address."""
    return response.status_code == 401


@bp.post("/devices/register")
@describe(
    "Enrol a device (or re-enrol a known uid, rotating its token)",
    request=RegisterRequest,
    response=RegisterResponse,
    status=201,
    auth="enrollment",
    errors=(400, 401, 413, 422, 429),
)
@limiter.limit(bad_credential_limits, key_func=get_remote_address, deduct_when=was_refused)
def register():
    raw = read_json_object()
    devices.check_enrollment_key(
        request.headers.get("X-Enrollment-Key") or raw.get("enrollment_key")
    )
    body = RegisterRequest.model_validate(raw)
    enrolment = devices.register_device(
        body.uid,
        utcnow(),
        name=body.name,
        site=body.site,
        app_version=body.app_version,
        address=request.remote_addr,
    )
    response = RegisterResponse(
        uid=enrolment.uid,
        token=enrolment.token,
        created=enrolment.created,
        status=enrolment.status,
        heartbeat_interval_seconds=enrolment.heartbeat_interval_seconds,
    )
    return jsonify(response.model_dump(mode="json")), 201


@bp.post("/devices/heartbeat")
@describe(
    "Report a heartbeat; the answer carries the interval and any reconnect request",
    request=HeartbeatRequest,
    response=HeartbeatResponse,
    auth="device",
    errors=(400, 401, 413, 422, 429, 503),
)
def heartbeat():
    token = bearer_token() or refuse_credentials("missing device token")
    token_hash = hash_token(token)
    ratelimits.check_heartbeat_limits(token_hash)
    body = parse_body(HeartbeatRequest)
    # A model's fields are its attributes: model_dump() would copy them twice as slowly.
    telemetry = heartbeats.Telemetry(**vars(body))
    try:
        result = heartbeats.accept_heartbeat(
            token_hash, telemetry, utcnow(), current_request().remote_addr
        )
    except Unauthorized as error:
        refuse_credentials(error.message)
    return Response(HEARTBEAT_ANSWER.dump_json(result), content_type="application/json")


# The answer, HeartbeatResponse as documented, written straight from the service's
# result: validating a HeartbeatResponse first cost as much again as writing it.
HEARTBEAT_ANSWER = TypeAdapter(heartbeats.HeartbeatResult)
