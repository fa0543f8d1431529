"""The fleet page, its poll, and the reconnect and bulk command actions."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from flask import abort, current_app, render_template, request
from flask_login import current_user

from dashboard.auth import requires_role
from dashboard.params import command_params, device_filter, parse_time, shown_ids, view_args
from fleet.errors import InvalidInput
from fleet.models import BulkAction
from fleet.services import bulk, dashboard
from fleet.timeutil import utcnow
from jobs.bulk import start_in_background


def _view_args() -> dict[str, str]:
    """The filter, sort and page of this request, to carry into the poll's URL."""
    return view_args(request.args.items())


def _page_view_args() -> dict[str, str]:
    """The filters of the page an htmx action came from (its HX-Current-URL)."""
    return view_args(parse_qsl(urlsplit(request.headers.get("HX-Current-URL", "")).query))


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


@requires_role("operator")
def reconnect(uid: str):
    now = utcnow()
    done = dashboard.reconnect_device(uid, current_user.email, now)
    # The counters come along (out of band), so "Reconnect pending" does not lag the click
    # until the next poll; they are marked for the filters of the page that clicked.
    html = render_template(
        "dashboard/_reconnected.html",
        device=done.device,
        flaps=done.flaps,
        counts=done.counts,
        view_args=_page_view_args(),
        now=now,
    )
    # The device page listens for this to redraw its summary.
    return html, 200, {"HX-Trigger": "device-changed"}


@requires_role("operator")
def reconnect_bulk():
    action = dashboard.reconnect_matching(device_filter(request.args), current_user.email, utcnow())
    if action.state == bulk.RUNNING:
        start_in_background(current_app._get_current_object(), action.id)
    return _bulk_progress(action)


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


def bulk_progress(action_id: int):
    """How far a bulk action is; polled by its progress line until it is done."""
    # A finished run's line carries no poll, so swapping it in ends the polling.
    return _bulk_progress(bulk.get_bulk_action(action_id))


def _bulk_progress(action: BulkAction) -> tuple[str, int]:
    spread = current_app.config["BULK_RECONNECT_SPREAD_SECONDS"]
    return render_template("dashboard/_bulk_result.html", action=action, spread=spread), 200
