"""The device API's two views: enrolment and the heartbeat (the hot path)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from pydantic import TypeAdapter

from api.auth import bearer_token, refuse_credentials
from api.body import parse_body, read_json_object
from api.schemas import (
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
    ScreenshotResponse,
)
from api.spec import describe
from fleet import ratelimits
from fleet.context import current_application, current_request
from fleet.errors import EnrolmentRefused, Unauthorized
from fleet.services import enrolment, heartbeats, screenshots
from fleet.services.commands import Ack
from fleet.timeutil import utcnow
from fleet.tokens import hash_token

# Named as the main app's API blueprint, so endpoints (and their metric labels) read api.*.
bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/devices/register")
@describe(
    "Enrol a device (or re-enrol a known uid, with its current token, rotating it)",
    request=RegisterRequest,
    response=RegisterResponse,
    status=201,
    auth="enrollment",
    errors=(400, 401, 409, 413, 422, 429),
)
def register():
    request = current_request()
    raw = read_json_object()
    try:
        enrolment.check_enrollment_key(
            request.headers.get("X-Enrollment-Key") or raw.get("enrollment_key")
        )
    except Unauthorized as error:
        refuse_credentials(error.message)
    body = RegisterRequest.model_validate(raw)
    ratelimits.count_enrolment(request.remote_addr, body.uid)
    try:
        enrolled = enrolment.register_device(
            body.uid,
            utcnow(),
            name=body.name,
            site=body.site,
            app_version=body.app_version,
            address=request.remote_addr,
            current_token=bearer_token(),
        )
    except EnrolmentRefused:
        # A takeover attempt (or a kiosk that lost its token) spends the address's allowance.
        ratelimits.count_failed_credentials(request.remote_addr)
        raise
    ratelimits.guard().remember_good(hash_token(enrolled.token))
    response = RegisterResponse(
        uid=enrolled.uid,
        token=enrolled.token,
        created=enrolled.created,
        status=enrolled.status,
        heartbeat_interval_seconds=enrolled.heartbeat_interval_seconds,
    )
    return jsonify(response.model_dump(mode="json")), 201


@bp.post("/devices/heartbeat")
@describe(
    "Report a heartbeat (with results of earlier commands); the answer carries the interval "
    "and any commands",
    request=HeartbeatRequest,
    response=HeartbeatResponse,
    auth="device",
    errors=(400, 401, 413, 422, 429, 503),
)
def heartbeat():
    request, app = current_request(), current_application()
    token = bearer_token(request) or refuse_credentials("missing device token")
    token_hash = hash_token(token)
    ratelimits.refuse_a_flooding_address(app, request.remote_addr, token_hash)
    ratelimits.check_heartbeat_limits(app, token_hash)
    body = parse_body(HeartbeatRequest, request)
    # Read field by field: model_dump() would copy them all twice as slowly.
    telemetry = heartbeats.Telemetry(
        body.battery_level, body.wifi_strength, body.app_version, body.uptime_seconds, body.extra
    )
    acks = [Ack(ack.id, ack.result, ack.message) for ack in body.acks] if body.acks else None
    try:
        result = heartbeats.accept_heartbeat(
            token_hash, telemetry, utcnow(), request.remote_addr, acks, app.config
        )
    except Unauthorized as error:
        refuse_credentials(error.message)
    ratelimits.guard(app).remember_good(token_hash)
    return Response(HEARTBEAT_ANSWER.dump_json(result), content_type="application/json")


# The answer, HeartbeatResponse as documented, written straight from the service's
# result: validating a HeartbeatResponse first would cost as much again as writing it.
HEARTBEAT_ANSWER = TypeAdapter(heartbeats.HeartbeatResult)


@bp.post("/devices/screenshots")
@describe(
    "Upload a screenshot (the raw PNG or JPEG bytes as the body), optionally for a command",
    response=ScreenshotResponse,
    status=201,
    auth="device",
    errors=(400, 401, 404, 413, 422, 429, 503),
)
def upload_screenshot():
    request, app = current_request(), current_application()
    token = bearer_token() or refuse_credentials("missing device token")
    token_hash = hash_token(token)
    ratelimits.refuse_a_flooding_address(app, request.remote_addr, token_hash)
    # Larger than the JSON bodies' cap: past it Flask answers 413 before reading on.
    request.max_content_length = app.config["SCREENSHOT_MAX_BYTES"]
    try:
        stored = screenshots.store_screenshot(
            token_hash, request.get_data(), request.args.get("command_id"), utcnow()
        )
    except Unauthorized as error:
        refuse_credentials(error.message)
    response = ScreenshotResponse(
        id=stored.id, media_type=stored.media_type, size=stored.size, taken_at=stored.taken_at
    )
    return jsonify(response.model_dump(mode="json")), 201
