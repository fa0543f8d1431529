"""The Sites page: every site's tiers now, its availability over 24 h and 30 days, its worst
devices and open incidents; searchable, sortable worst first, paginated for thousands of sites.

The figures come from the rollups as everywhere else. Sorting worst first needs
every site's 24-hour availability, which is one grouped query over the hour
rollups (at most 24 rows a device) plus the open segments; the 30-day figure,
worst devices and incidents are read for the page's sites only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, or_, select

from fleet.alert_models import Incident
from fleet.extensions import db
from fleet.models import Device
from fleet.services.availability.fold import Seconds
from fleet.services.availability.windows import device_rows, seconds_of, stream, window_of

SiteSort = Literal["worst", "name", "devices"]
SITE_SORTS: tuple[str, ...] = ("worst", "name", "devices")
SITES_PER_PAGE = 50
WORST_SHOWN = 3
FIRING = ("open", "acknowledged")
NO_SITE = ""


@dataclass
class WorstDevice:
    uid: str
    status: str
    availability: float | None


@dataclass
class SiteLine:
    site: str
    devices: int = 0
    tiers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    expected_off: int = 0
    day: Seconds = field(default_factory=Seconds)
    month: Seconds = field(default_factory=Seconds)
    worst: list[WorstDevice] = field(default_factory=list)
    incidents: int = 0


@dataclass(frozen=True)
class SitesScreen:
    sites: list[SiteLine]
    total: int
    page: int
    pages: int
    per_page: int
    sort: str
    q: str
    now: datetime


def sites_screen(q: str, sort: str, page: int, now: datetime) -> SitesScreen:
    """One page of sites matching `q`, sorted (worst first by default), with their figures."""
    lines = _day_lines(q, now)
    ordered = sorted(lines.values(), key=_sort_key(sort))
    pages = max(1, math.ceil(len(ordered) / SITES_PER_PAGE))
    page = min(max(1, page), pages)
    shown = ordered[(page - 1) * SITES_PER_PAGE : page * SITES_PER_PAGE]
    _add_month(shown, now)
    _add_incidents(shown)
    return SitesScreen(shown, len(ordered), page, pages, SITES_PER_PAGE, sort, q, now)


def _matching(q: str):
    site = func.coalesce(Device.site, NO_SITE)
    return site.ilike(f"%{_escape(q)}%", escape="\\") if q else None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_lines(q: str, now: datetime) -> dict[str, SiteLine]:
    """Every matching site's tiers now and 24-hour seconds, and its worst devices by it."""
    window = window_of("24h", now)
    lines: dict[str, SiteLine] = {}
    worst: dict[str, list[tuple[float, WorstDevice]]] = defaultdict(list)
    for row in stream(device_rows(window, _matching(q), with_outages=False), db.session):
        name = row.site or NO_SITE
        line = lines.setdefault(name, SiteLine(name))
        seconds = seconds_of(row, window)
        line.devices += 1
        line.tiers[row.status] += 1
        line.expected_off += row.expected_off is not None
        line.day.merge(seconds)
        availability = seconds.availability
        worst[name].append(
            (
                1.0 if availability is None else availability,
                WorstDevice(row.uid, row.status, availability),
            )
        )
    for name, candidates in worst.items():
        candidates.sort(key=lambda pair: (pair[0], pair[1].uid))
        lines[name].worst = [device for score, device in candidates[:WORST_SHOWN] if score < 1.0]
    return lines


def _sort_key(sort: str):
    if sort == "name":
        return lambda line: (line.site == NO_SITE, line.site.lower())
    if sort == "devices":
        return lambda line: (-line.devices, line.site.lower())
    # Worst first: lowest availability over 24 h, then most disconnected now.
    return lambda line: (
        2.0 if line.day.availability is None else line.day.availability,
        -line.tiers.get("disconnected", 0),
        line.site.lower(),
    )


def _add_month(lines: list[SiteLine], now: datetime) -> None:
    if not lines:
        return
    window = window_of("30d", now)
    by_name = {line.site: line for line in lines}
    names = [name for name in by_name if name != NO_SITE]
    scope = Device.site.in_(names)
    if NO_SITE in by_name:
        scope = or_(scope, Device.site.is_(None), Device.site == NO_SITE)
    for row in stream(device_rows(window, scope, with_outages=False), db.session):
        by_name[row.site or NO_SITE].month.merge(seconds_of(row, window))


def _add_incidents(lines: list[SiteLine]) -> None:
    """Open and acknowledged incidents per site: site incidents and device ones not folded in."""
    if not lines:
        return
    site = func.coalesce(Incident.site, Device.site, NO_SITE)
    rows = db.session.execute(
        select(site.label("site"), func.count())
        .select_from(Incident)
        .outerjoin(Device, Device.id == Incident.device_id)
        .where(Incident.state.in_(FIRING), Incident.parent_id.is_(None))
        .where(site.in_([line.site for line in lines]))
        .group_by(site)
    ).all()
    counts = dict(rows)
    for line in lines:
        line.incidents = counts.get(line.site, 0)
