"""Reading views from query strings: every filter and sort lives in the URL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from werkzeug.datastructures import MultiDict

from fleet.errors import InvalidInput
from fleet.rules import Status
from fleet.services.event_log import Cursor, LogFilter
from fleet.services.queries import (
    DEFAULT_PER_PAGE,
    DEFAULT_SORT,
    EXPECTED_OFF_FILTERS,
    MAX_PAGE_NUMBER,
    PER_PAGE_CHOICES,
    SORTS,
    DeviceFilter,
)


def _int(args: MultiDict, name: str, default: int) -> int:
    """A positive whole number from the URL; anything else (or absurdly large) is the default."""
    raw = args.get(name, "")
    if not (raw.isascii() and raw.isdigit()):  # "²".isdigit() is True, int("²") fails
        return default
    return int(raw) if 0 < int(raw) <= MAX_PAGE_NUMBER else default


def command_params(form: MultiDict) -> dict[str, int]:
    """A command's params from a dashboard form: the optional delay; InvalidInput if it is bad."""
    raw = (form.get("delay_seconds") or "").strip()
    if not raw:
        return {}
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise InvalidInput("the delay is a whole number of seconds")
    return {"delay_seconds": int(raw)}


def page_number(args: MultiDict) -> int:
    """The `page` in the URL, or 1."""
    return _int(args, "page", 1)


def _text(args: MultiDict, name: str) -> str | None:
    return (args.get(name) or "").strip()[:200] or None


# The query keys a fleet view is made of: the only ones carried into its links and its
# poll's URL (anything else, such as `endpoint` or `_external`, would reach `url_for`).
VIEW_KEYS = (
    "expected_off",
    "status",
    "site",
    "flapping",
    "reconnect",
    "attention",
    "q",
    "sort",
    "page",
    "per_page",
)


def view_args(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The fleet view's keys among `pairs`, empty values left out."""
    return {key: value for key, value in pairs if key in VIEW_KEYS and value}


def device_filter(args: MultiDict) -> DeviceFilter:
    """The fleet view in `args`; unknown values fall back to the defaults, never an error."""
    status = args.get("status")
    sort = args.get("sort", DEFAULT_SORT)
    per_page = _int(args, "per_page", DEFAULT_PER_PAGE)
    flapping = {"yes": True, "no": False}.get(args.get("flapping", ""))
    expected_off = args.get("expected_off")
    return DeviceFilter(
        status=status if status in set(Status) else None,
        site=_text(args, "site"),
        flapping=flapping,
        reconnect_pending=args.get("reconnect") == "pending" or None,
        attention=args.get("attention") == "yes" or None,
        expected_off=expected_off if expected_off in EXPECTED_OFF_FILTERS else None,
        q=_text(args, "q"),
        sort=sort if sort in SORTS else DEFAULT_SORT,
        page=_int(args, "page", 1),
        per_page=per_page if per_page in PER_PAGE_CHOICES else DEFAULT_PER_PAGE,
    )


def parse_time(raw: str | None) -> datetime | None:
    """An ISO time (as sent by the poll, or typed in a filter), read as UTC when zoneless."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def shown_ids(args: MultiDict) -> list[int]:
    """The device ids on the client's screen, sent by the poll as `shown=1,2,3`."""
    parts = args.get("shown", "").split(",")[:1000]
    return [int(part) for part in parts if part.isascii() and part.isdigit() and int(part) < 2**31]


def event_filter(args: MultiDict) -> LogFilter:
    """The Events page view in `args`."""
    return LogFilter(
        device=_text(args, "device"),
        site=_text(args, "site"),
        reason=_text(args, "reason"),
        source=_text(args, "source"),
        kind=_text(args, "kind"),
        since=parse_time(args.get("since")),
        until=parse_time(args.get("until")),
        page=_int(args, "page", 1),
    )


def event_cursor(args: MultiDict) -> Cursor | None:
    """The Events page poll's cursor, sent as `after=<event id>.<log id>`; None if malformed."""
    parts = args.get("after", "").split(".")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) < 19 for p in parts):
        return None
    return Cursor(int(parts[0]), int(parts[1]))
