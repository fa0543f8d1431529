"""The device page and per-device thresholds."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.auth import requires_role
from dashboard.params import page_number
from fleet.errors import InvalidInput
from fleet.services import dashboard, history, overrides
from fleet.timeutil import utcnow


def device(uid: str):
    # The same URL serves the page and, for htmx's refresh, only the summary,
    # which is all the refresh needs loaded.
    if request.headers.get("HX-Request"):
        summary = dashboard.device_summary(uid, utcnow())
        response = render_template("dashboard/_device_summary.html", summary=summary)
    else:
        span = request.args.get("span", history.DEFAULT_SPAN)
        screen = dashboard.device_screen(uid, utcnow(), page_number(request.args), span)
        response = render_template("dashboard/device.html", screen=screen)
    return response, 200, {"Vary": "HX-Request"}


@requires_role("admin")
def thresholds(uid: str):
    try:
        values = overrides.Overrides(
            **{name: _seconds(request.form.get(name)) for name in overrides.FIELDS}
        )
        overrides.set_overrides(uid, values, current_user.email, utcnow())
    except InvalidInput as error:
        # The page again, not a redirect: the error sits in the form's card and
        # the values stay as typed, so the admin corrects one instead of all.
        typed = {name: request.form.get(name, "")[:_MAX_DIGITS] for name in overrides.FIELDS}
        screen = dashboard.device_screen(uid, utcnow())
        page = render_template(
            "dashboard/device.html",
            screen=screen,
            thresholds_typed=typed,
            thresholds_error=error.message,
        )
        return page, 422
    flash("Thresholds saved.", "ok")
    return redirect(url_for("dashboard.device", uid=uid) + "#thresholds")


_MAX_DIGITS = 12


def _seconds(raw: str | None) -> int | None:
    """A whole number of seconds; a blank field means the fleet default.

    The range is left to `overrides.validate`: one limit, with the service's
    message naming the field and its bounds.
    """
    raw = (raw or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):  # "²".isdigit() is True, int("²") fails
        raise InvalidInput("thresholds are whole numbers of seconds")
    # Python refuses to read integers of over 4,300 digits; anything past a few
    # digits is out of range anyway, and the service says so.
    return int(raw.lstrip("0")[:_MAX_DIGITS] or "0")
