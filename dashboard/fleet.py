"""The fleet page, its poll, and the reconnect and bulk command actions."""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_login import current_user

from dashboard import bp
from dashboard.auth import requires_role
from dashboard.params import command_params, device_filter, parse_time, shown_ids
from fleet.errors import InvalidInput
from fleet.models import BulkAction
from fleet.services import bulk, dashboard
from fleet.timeutil import utcnow
from jobs.bulk import start_in_background

POLL_KEYS = ("since", "shown", "seen")


def _view_args() -> dict[str, str]:
    """The filter, sort and page of this request, to carry into the poll's URL."""
    return {key: value for key, value in request.args.items() if key not in POLL_KEYS and value}


@bp.get("/")
def fleet():
    view = device_filter(request.args)
    screen = dashboard.fleet_screen(view, utcnow())
    return render_template(
        "dashboard/fleet.html",
        view=view,
        screen=screen,
        view_args=_view_args(),
        spread=current_app.config["BULK_RECONNECT_SPREAD_SECONDS"],
    )


@bp.get("/poll")
def poll():
    since = parse_time(request.args.get("since"))
    if since is None:
        abort(400)
    now = utcnow()
    view, shown = device_filter(request.args), shown_ids(request.args)
    changes = dashboard.poll_fleet(view, since, shown, now, seen=request.args.get("seen"))
    if changes is None:
        return "", 204
    return render_template("dashboard/_poll.html", changes=changes, view_args=_view_args(), now=now)


@bp.post("/devices/<uid>/reconnect")
@requires_role("operator")
def reconnect(uid: str):
    now = utcnow()
    device, flaps = dashboard.reconnect_device(uid, current_user.email, now)
    html = render_template("dashboard/_device_row.html", device=device, flaps=flaps, now=now)
    # The device page listens for this to redraw its summary.
    return html, 200, {"HX-Trigger": "device-changed"}


@bp.post("/reconnect")
@requires_role("operator")
def reconnect_bulk():
    action = dashboard.reconnect_matching(device_filter(request.args), current_user.email, utcnow())
    if action.state == bulk.RUNNING:
        start_in_background(current_app._get_current_object(), action.id)
    return _bulk_progress(action)


@bp.post("/commands/bulk")
@requires_role("operator")
def command_bulk():
    """A command to every device the view matches; a refusal comes back as the result line."""
    try:
        action = dashboard.command_matching(
            device_filter(request.args),
            request.form.get("kind", ""),
            command_params(request.form),
            current_user.email,
            utcnow(),
        )
    except InvalidInput as refused:
        return render_template("dashboard/_bulk_result.html", error=refused.message), 200
    if action.state == bulk.RUNNING:
        start_in_background(current_app._get_current_object(), action.id)
    return _bulk_progress(action)


@bp.get("/bulk/<int:action_id>")
def bulk_progress(action_id: int):
    """How far a bulk action is; polled by its progress line until it is done."""
    # A finished run's line carries no poll, so swapping it in ends the polling.
    return _bulk_progress(bulk.get_bulk_action(action_id))


def _bulk_progress(action: BulkAction) -> tuple[str, int]:
    spread = current_app.config["BULK_RECONNECT_SPREAD_SECONDS"]
    return render_template("dashboard/_bulk_result.html", action=action, spread=spread), 200
