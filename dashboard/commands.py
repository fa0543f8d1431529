"""The device page's commands: the menu (operators), the history, the latest screenshot."""

from __future__ import annotations

from flask import Response, render_template, request
from flask_login import current_user

from dashboard import bp
from dashboard.auth import requires_role
from fleet.errors import InvalidInput
from fleet.services import commands, screenshots
from fleet.timeutil import utcnow


@bp.get("/devices/<uid>/commands")
def device_commands(uid: str):
    return _panel(uid)


@bp.post("/devices/<uid>/commands")
@requires_role("operator")
def request_command(uid: str):
    error = None
    try:
        commands.request_command(
            uid, request.form.get("kind", ""), _params(), current_user.email, utcnow()
        )
    except InvalidInput as refused:
        error = refused.message
    # htmx swaps 200s only: a refused request redraws the panel with the reason.
    return _panel(uid, error)


@bp.get("/devices/<uid>/screenshots/<int:screenshot_id>")
def screenshot(uid: str, screenshot_id: int):
    data, media_type = screenshots.screenshot_image(uid, screenshot_id)
    # Stored once and never changed: the browser may keep it.
    return Response(data, mimetype=media_type, headers={"Cache-Control": "private, max-age=3600"})


def _panel(uid: str, error: str | None = None):
    panel = commands.command_panel(uid)
    return render_template("dashboard/_device_commands.html", panel=panel, error=error)


def _params() -> dict[str, int]:
    raw = (request.form.get("delay_seconds") or "").strip()
    if not raw:
        return {}
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise InvalidInput("the delay is a whole number of seconds")
    return {"delay_seconds": int(raw)}
