"""The Events page and its live update."""

from __future__ import annotations

from flask import abort, render_template, request

from dashboard import bp
from dashboard.params import event_cursor, event_filter
from fleet.services import event_log


def _view_args() -> dict[str, str]:
    """The filters of this request, to carry into the poll's URL."""
    return {
        key: value for key, value in request.args.items() if key not in ("after", "page") and value
    }


@bp.get("/events")
def events():
    screen = event_log.events_screen(event_filter(request.args))
    return render_template(
        "dashboard/events.html",
        screen=screen,
        view=screen.view,
        kinds=event_log.kinds(),
        sources=event_log.SOURCES,
        view_args=_view_args(),
    )


@bp.get("/events/poll")
def events_poll():
    """The Events page's live update: the entries that came since its cursor, or 204."""
    after = event_cursor(request.args)
    if after is None:
        abort(400)
    news = event_log.new_entries(event_filter(request.args), after)
    if not news.entries:
        # The poller keeps its URL: nothing to swap, and its cursor is still right.
        return "", 204
    return render_template("dashboard/_events_poll.html", news=news, view_args=_view_args())
