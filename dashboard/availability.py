"""The Sites page, the reports page and its CSV downloads, and the status bars' helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import g, render_template, request

from api.reports import csv_response
from dashboard.params import page_number
from fleet.services.availability import bars, reports, sites
from fleet.timeutil import utcnow

GROUPINGS = ("site", "device", "fleet")


def sites_page():
    sort = request.args.get("sort", "worst")
    q = (request.args.get("q") or "").strip()[:200]
    screen = sites.sites_screen(
        q, sort if sort in sites.SITE_SORTS else "worst", page_number(request.args), utcnow()
    )
    return render_template("dashboard/sites.html", screen=screen, SITE_SORTS=sites.SITE_SORTS)


def _day(raw: str | None, default: date) -> tuple[date, bool]:
    """A YYYY-MM-DD from the URL, or the default; the flag says whether the input was bad."""
    if not raw:
        return default, False
    try:
        return date.fromisoformat(raw), False
    except ValueError:
        return default, True


def _range(now: datetime) -> tuple[date, date, str | None]:
    """The report's days from the URL: this month so far unless given; bad input is named."""
    today = now.astimezone(UTC).date()
    first, bad_first = _day(request.args.get("from"), today.replace(day=1))
    last, bad_last = _day(request.args.get("to"), today)
    error = "from is not a date (YYYY-MM-DD)" if bad_first else None
    error = error or ("to is not a date (YYYY-MM-DD)" if bad_last else None)
    if last < first:
        first, last, error = today.replace(day=1), today, "to must not be before from"
    return first, last, error


def _site() -> str | None:
    return (request.args.get("site") or "").strip()[:200] or None


def reports_page():
    now = utcnow()
    first, last, error = _range(now)
    by = request.args.get("by", "site")
    by = by if by in GROUPINGS else "site"
    screen = reports.report_screen(first, last, by, now, _site())
    return (
        render_template(
            "dashboard/reports.html",
            screen=screen,
            first=first,
            last=last,
            by=by,
            site=_site() or "",
            error=error,
            now=now,
            GROUPINGS=GROUPINGS,
        ),
        422 if error else 200,
    )


def availability_csv():
    now = utcnow()
    first, last, _ = _range(now)
    by = request.args.get("by", "device")
    by = by if by in GROUPINGS else "device"
    lines = reports.availability_csv(first, last, by, now, _site())
    return csv_response(lines, f"availability-{by}-{first}-{last}.csv")


def outages_csv():
    now = utcnow()
    first, last, _ = _range(now)
    return csv_response(
        reports.outages_csv(first, last, now, _site()), f"outages-{first}-{last}.csv"
    )


def preload_grid_bars(device_ids: list[int], now: datetime) -> str:
    """Read the 24-hour bars of a page of rows at once; the rows then take theirs from `g`."""
    g.pulseboard_grid_bars = bars.grid_bars(device_ids, now)
    return ""


def grid_bar(device_id: int, now: datetime) -> bars.Bar | None:
    """This row's 24-hour bar: preloaded with its page, or read alone (a single row's redraw)."""
    preloaded = g.get("pulseboard_grid_bars")
    if preloaded is None or device_id not in preloaded:
        return bars.grid_bars([device_id], now).get(device_id)
    return preloaded[device_id]


def percent(value: float | None) -> str:
    """An availability as people read it: "99.62 %", or a dash when never expected on."""
    if value is None:
        return "—"
    return f"{value * 100:.2f} %" if value < 1 else "100 %"


def span(seconds: float) -> str:
    """A length of time in days, hours and minutes: "2 d 4 h", "3 h 05 min", "42 s"."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


BUCKET_WORDS = {
    "connected": "connected",
    "temporarily_offline": "temporarily offline",
    "disconnected": "disconnected",
    "off_hours": "off hours",
    "none": "not yet enrolled",
}


def bucket_word(bucket: str) -> str:
    return BUCKET_WORDS.get(bucket, bucket)
