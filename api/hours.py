"""The admin API of operating hours and maintenance windows (scopes `read`, `operate`)."""

from __future__ import annotations

from flask import jsonify

from api.admin import SERVICE_ERRORS, identity, require_service
from api.body import parse_body
from api.hours_schemas import (
    ScheduleOut,
    ScheduleRequest,
    WindowListResponse,
    WindowOut,
    WindowRequest,
    schedule_out,
    window_out,
)
from api.spec import describe
from fleet.services import hours
from fleet.services.device_state import get_device
from fleet.timeutil import utcnow

WRITE_ERRORS = (*SERVICE_ERRORS, 400, 413, 422)


def _site_schedule(site: str) -> ScheduleOut:
    view = hours.site_hours_view(site, utcnow())
    return schedule_out(view, hours.get_site_hours(site), site=site)


@describe(
    "A site's operating hours, whether it is open now and its next opening or closing",
    response=ScheduleOut,
    auth="service:read",
    errors=SERVICE_ERRORS,
)
@require_service("read")
def get_site_schedule(site: str):
    return jsonify(_site_schedule(site).model_dump(mode="json"))


@describe(
    "Set a site's operating hours (time zone, weekly spans, holidays, closures)",
    request=ScheduleRequest,
    response=ScheduleOut,
    auth="service:operate",
    errors=WRITE_ERRORS,
)
@require_service("operate")
def put_site_schedule(site: str):
    body = parse_body(ScheduleRequest)
    hours.set_site_hours(site, body.as_schedule_data(), identity().actor, utcnow())
    return jsonify(_site_schedule(site).model_dump(mode="json"))


@describe(
    "Remove a site's operating hours: always open again",
    status=204,
    auth="service:operate",
    errors=(*SERVICE_ERRORS, 404),
)
@require_service("operate")
def delete_site_schedule(site: str):
    hours.clear_site_hours(site, identity().actor, utcnow())
    return "", 204


@describe(
    "Give one device operating hours of its own, overriding its site's",
    request=ScheduleRequest,
    response=ScheduleOut,
    auth="service:operate",
    errors=(*WRITE_ERRORS, 404),
)
@require_service("operate")
def put_device_schedule(uid: str):
    body = parse_body(ScheduleRequest)
    row = hours.set_device_hours(uid, body.as_schedule_data(), identity().actor, utcnow())
    view = hours.device_hours_view(get_device(uid), utcnow())
    return jsonify(schedule_out(view, row, uid=uid).model_dump(mode="json"))


@describe(
    "Maintenance windows: those not over yet first, then the latest finished",
    response=WindowListResponse,
    auth="service:read",
    errors=SERVICE_ERRORS,
)
@require_service("read")
def list_maintenance():
    now = utcnow()
    items = [window_out(w, hours.window_state(w, now)) for w in hours.list_windows()]
    return jsonify(WindowListResponse(items=items).model_dump(mode="json"))


@describe(
    "Create a maintenance window for a site, devices or a saved fleet filter",
    request=WindowRequest,
    response=WindowOut,
    status=201,
    auth="service:operate",
    errors=WRITE_ERRORS,
)
@require_service("operate")
def create_maintenance():
    body = parse_body(WindowRequest)
    now = utcnow()
    spec = hours.WindowSpec(**body.model_dump(exclude={"filter"}), fleet_filter=body.filter)
    window = hours.create_window(spec, identity().actor, now)
    return jsonify(window_out(window, hours.window_state(window, now)).model_dump(mode="json")), 201


@describe(
    "End a maintenance window early (or cancel one not begun)",
    response=WindowOut,
    auth="service:operate",
    errors=(*SERVICE_ERRORS, 404, 409),
)
@require_service("operate")
def end_maintenance(window_id: int):
    now = utcnow()
    window = hours.end_window(window_id, identity().actor, now)
    return jsonify(window_out(window, hours.window_state(window, now)).model_dump(mode="json"))
