"""Commands on the dashboard: the device page's menu, history and latest screenshot, and the
fleet grid's command cell (each row's latest command and, for operators, its menu)."""

from __future__ import annotations

from flask import Response, current_app, render_template, request
from flask_login import current_user

from dashboard.auth import requires_role
from dashboard.params import command_params
from fleet.errors import InvalidInput
from fleet.models import DeviceCommand
from fleet.services import commands, dashboard, screenshots
from fleet.timeutil import utcnow


def device_commands(uid: str):
    return _panel(uid)


@requires_role("operator")
def request_command(uid: str):
    error = None
    try:
        kind, params = request.form.get("kind", ""), command_params(request.form)
        commands.request_command(uid, kind, params, current_user.email, utcnow())
    except InvalidInput as refused:
        error = refused.message
    # htmx swaps 200s only: a refused request redraws the panel with the reason.
    return _panel(uid, error)


@requires_role("operator")
def request_row_command(uid: str):
    """A command asked from the fleet grid's row; the answer is the row's command cell."""
    try:
        params = command_params(request.form)
    except InvalidInput as refused:
        return _cell(dashboard.command_cell(uid, refused.message))
    kind = request.form.get("kind", "")
    return _cell(dashboard.command_from_grid(uid, kind, params, current_user.email, utcnow()))


def latest_command(device_id: int) -> DeviceCommand | None:
    """A lone row's latest command (a page of rows reads theirs in one query instead)."""
    return commands.latest_by_device([device_id]).get(device_id)


def row_command_kinds() -> tuple[str, ...]:
    """The kinds a grid row's menu offers: reconnect keeps its own button."""
    return tuple(kind for kind in current_app.config["COMMAND_KINDS"] if kind != "reconnect")


def _cell(cell: dashboard.CommandCell) -> str:
    return render_template(
        "dashboard/_command_cell.html", uid=cell.uid, command=cell.command, error=cell.error
    )


def screenshot(uid: str, screenshot_id: int):
    data, media_type = screenshots.screenshot_image(uid, screenshot_id)
    # Stored once and never changed: the browser may keep it.
    return Response(data, mimetype=media_type, headers={"Cache-Control": "private, max-age=3600"})


def _panel(uid: str, error: str | None = None):
    panel = commands.command_panel(uid)
    return render_template("dashboard/_device_commands.html", panel=panel, error=error)
