"""Maintenance windows (list for all, create and end early for operators) and site schedules."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.auth import requires_role
from dashboard.params import parse_time
from fleet.errors import FleetError, InvalidField
from fleet.schedules import ScheduleError, schedule_from_text
from fleet.services import hours
from fleet.services.schedule_tick import describe_target
from fleet.timeutil import utcnow

TARGETS = ("site", "uids", "filter")


def local_time(moment: datetime | None, timezone: str) -> str:
    """A time as the site's clock shows it: "Wed 08:00 Europe/Berlin"."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(timezone)).strftime(f"%a %d %b %H:%M {timezone}")


def window_when(window: Any) -> str:
    """What a window covers and when, in words."""
    return f"{describe_target(window)}, {hours.describe_when(window)}"


def maintenance():
    now = utcnow()
    windows = [(window, hours.window_state(window, now)) for window in hours.list_windows()]
    return render_template(
        "dashboard/maintenance.html",
        windows=windows,
        prefill=request.args,
        targets=TARGETS,
        now=now,
    )


@requires_role("operator")
def create_maintenance():
    try:
        window = hours.create_window(_spec(request.form), current_user.email, utcnow())
        flash(f"Maintenance window #{window.id} created for {describe_target(window)}.", "ok")
    except FleetError as error:
        flash(error.message, "error")
    return redirect(url_for("dashboard.maintenance"))


@requires_role("operator")
def end_maintenance(window_id: int):
    try:
        window = hours.end_window(window_id, current_user.email, utcnow())
        flash(f"Maintenance window #{window.id} ended.", "ok")
    except FleetError as error:
        flash(error.message, "error")
    return redirect(url_for("dashboard.maintenance"))


def site_schedule(site: str):
    view = hours.site_hours_view(site, utcnow())
    return render_template(
        "dashboard/site_schedule.html", site=site, hours=view, row=hours.get_site_hours(site)
    )


@requires_role("operator")
def set_site_schedule(site: str):
    try:
        data = schedule_from_text(
            (request.form.get("timezone") or "").strip()[:64] or None,
            _lines(request.form.get("hours")),
            (request.form.get("holidays") or "").strip()[:10] or None,
            _lines(request.form.get("closures")),
        )
        hours.set_site_hours(site, data, current_user.email, utcnow())
        flash(f"Operating hours of {site} saved.", "ok")
    except ScheduleError as error:
        flash(str(error), "error")
    except FleetError as error:
        flash(error.message, "error")
    return redirect(url_for("dashboard.site_schedule", site=site))


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines()[:100] if line.strip()]


def _spec(form: Any) -> hours.WindowSpec:
    """The create form as a window; a field that cannot be read is named in the error."""
    target = form.get("target", "site")
    if target not in TARGETS:
        raise InvalidField("target", "is site, uids or filter")
    text = {name: (form.get(name) or "").strip() for name in ("site", "uids", "filter")}
    recurring = form.get("when") == "recurring"
    return hours.WindowSpec(
        site=text["site"][:200] or None if target == "site" else None,
        uids=[u for u in re.split(r"[\s,]+", text["uids"]) if u][:1001] or None
        if target == "uids"
        else None,
        fleet_filter=text["filter"][:1000] or None if target == "filter" else None,
        starts_at=None if recurring else _moment(form, "starts_at"),
        ends_at=None if recurring else _moment(form, "ends_at"),
        cron=(form.get("cron") or "").strip()[:120] or None if recurring else None,
        duration_minutes=_minutes(form.get("duration_minutes")) if recurring else None,
        note=(form.get("note") or "").strip()[:500] or None,
    )


def _moment(form: Any, name: str) -> datetime | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    moment = parse_time(raw)
    if moment is None:
        raise InvalidField(name, "is a date and time, YYYY-MM-DDTHH:MM (UTC)")
    return moment


def _minutes(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise InvalidField("duration_minutes", "is a whole number of minutes")
    return int(raw)
