"""The Events page and its live update."""

from __future__ import annotations

from flask import abort, render_template, request

from dashboard.params import event_cursor, event_filter
from fleet.services import event_log

# The Events page's filters: what its poll carries. Only these, so that a stray
# query key (`endpoint`, `_external`) never reaches url_for.
FILTER_KEYS = ("device", "site", "reason", "source", "kind", "since", "until")


def _view_args() -> dict[str, str]:
    """The filters of this request, to carry into the poll's URL."""
    return {key: request.args[key] for key in FILTER_KEYS if request.args.get(key)}


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


def events_poll():
    """The Events page's live update: the entries that came since its cursor, or 204."""
    after = event_cursor(request.args)
    if after is None:
        abort(400)
    news = event_log.new_entries(event_filter(request.args), after)
    if news.cursor == after:
        # Nothing happened anywhere: the poller keeps its URL.
        return "", 204
    # Entries of other views still move the poller's cursor, so that a quiet
    # filtered view does not search a growing range on every poll.
    return render_template("dashboard/_events_poll.html", news=news, view_args=_view_args())
