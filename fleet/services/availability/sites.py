"""The Sites page: every site's tiers now, its availability over 24 h and 30 days, its worst
devices and open incidents; searchable, sortable worst first, paginated for thousands of sites.

The figures come from the rollups as everywhere else. Sorting worst first needs
every site's 24-hour availability: the site hour rollups (at most 24 rows a
site) and the devices' open segments, each grouped by site, joined, sorted and
cut to the page in the database, so Python sees 50 sites, not 2,000. The 30-day
figure, worst devices and incidents are read for the page's sites only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import case, func, or_, select

from fleet.alert_models import Incident
from fleet.availability_models import AvailabilitySiteHour
from fleet.extensions import db
from fleet.models import Device
from fleet.services.availability.fold import Seconds
from fleet.services.availability.tally import NO_SITE, SITE_KEY
from fleet.services.availability.windows import (
    Window,
    device_rows,
    group_of,
    grouped_rows,
    seconds_of,
    site_hours,
    window_of,
)

SiteSort = Literal["worst", "name", "devices"]
SITE_SORTS: tuple[str, ...] = ("worst", "name", "devices")
SITES_PER_PAGE = 50
WORST_SHOWN = 3
FIRING = ("open", "acknowledged")


@dataclass
class WorstDevice:
    uid: str
    status: str
    availability: float | None


@dataclass
class SiteLine:
    site: str
    devices: int = 0
    expected_off: int = 0
    day: Seconds = field(default_factory=Seconds)
    tiers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
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
    """One page of sites matching `q`, sorted (worst first by default), with their figures.

    1. Every matching site's devices per tier and 24-hour seconds, sorted and cut to
       the page: one statement, summed, sorted and counted in the database.
    2. For the page's devices only: the 30-day seconds, the worst devices, the incidents.
    """
    page = max(1, page)
    shown, total = _site_page(q, sort, page, now)
    pages = max(1, math.ceil(total / SITES_PER_PAGE))
    if page > pages:
        # Past the end (a bookmark from a longer list): the last page instead.
        page = pages
        shown, total = _site_page(q, sort, page, now)
    if shown:
        ids = list(db.session.execute(select(Device.id).where(_sites_scope(shown))).scalars())
        _add_month(shown, ids, now)
        _add_worst(shown, ids, now)
        _add_incidents(shown)
    return SitesScreen(shown, total, page, pages, SITES_PER_PAGE, sort, q, now)


def _matching(q: str, site: Any = SITE_KEY) -> Any:
    return site.ilike(f"%{_escape(q)}%", escape="\\") if q else None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sites_scope(lines: list[SiteLine]) -> Any:
    # On the column itself, not SITE_KEY: the site index serves it.
    names = [line.site for line in lines]
    scope = Device.site.in_([name for name in names if name != NO_SITE])
    return or_(scope, Device.site.is_(None), Device.site == NO_SITE) if NO_SITE in names else scope


def _site_page(q: str, sort: str, page: int, now: datetime) -> tuple[list[SiteLine], int]:
    """The page's sites with their devices per tier now and 24-hour seconds, and how many
    sites match in all."""
    window = window_of("24h", now)
    rollups = site_hours(window, _matching(q, AvailabilitySiteHour.site))
    sites = grouped_rows(window, SITE_KEY, rollups, _matching(q)).subquery("sites")
    query = (
        select(sites, func.count().over().label("total"))
        .order_by(*_order(sort, sites.c))
        .limit(SITES_PER_PAGE)
        .offset((page - 1) * SITES_PER_PAGE)
    )
    rows = db.session.connection().execute(query).all()
    lines = [_site_line(row) for row in rows]
    if rows:
        return lines, rows[0].total
    return lines, 0 if page <= 1 else _count(q)


def _site_line(row: Any) -> SiteLine:
    group = group_of(row)
    line = SiteLine(row.key, group.devices, group.expected_off, group.seconds)
    line.tiers.update(group.tiers)
    return line


def _count(q: str) -> int:
    """How many sites match (asked only when the page asked for is past the end)."""
    counted = select(func.count(SITE_KEY.distinct()))
    match = _matching(q)
    return db.session.execute(counted if match is None else counted.where(match)).scalar_one()


def _order(sort: str, site: Any) -> list[Any]:
    name = func.lower(site.key)
    if sort == "name":
        return [case((site.key == NO_SITE, 1), else_=0), name, site.key]
    if sort == "devices":
        return [site.devices.desc(), name, site.key]
    # Worst first: lowest availability over 24 h (never expected on last), then most
    # disconnected now. The same figure as Seconds.availability, in the database.
    expected = site.connected + site.temporarily_offline + site.disconnected
    availability = case(
        (expected <= 0, 2.0), (site.connected >= expected, 1.0), else_=site.connected / expected
    )
    return [availability, site.n_disconnected.desc(), name, site.key]


def _page_devices(window: Window, ids: list[int]) -> Iterator[tuple[Any, Seconds]]:
    """Each of the page's devices with its seconds in the window.

    By device id, so the rollups are read from their key: given the sites
    instead, PostgreSQL guesses thousands of rows and scans every rollup row
    of the window (docs/benchmarks.md). Not streamed: a page's sites are a bounded read.
    """
    for row in db.session.execute(device_rows(window, with_outages=False, device_ids=ids)):
        yield row, seconds_of(row, window)


def _add_month(lines: list[SiteLine], ids: list[int], now: datetime) -> None:
    """Each site's 30-day seconds: its devices' summed."""
    month: dict[str, Seconds] = defaultdict(Seconds)
    for row, seconds in _page_devices(window_of("30d", now), ids):
        month[row.site or NO_SITE].merge(seconds)
    for line in lines:
        line.month = month[line.site]


def _add_worst(lines: list[SiteLine], ids: list[int], now: datetime) -> None:
    """Each site's devices least available over 24 h (those below 100 %), worst first."""
    candidates: dict[str, list[tuple[float, str, WorstDevice]]] = defaultdict(list)
    for row, seconds in _page_devices(window_of("24h", now), ids):
        availability = seconds.availability
        if availability is not None and availability < 1.0:
            worst = WorstDevice(row.uid, row.status, availability)
            candidates[row.site or NO_SITE].append((availability, row.uid, worst))
    for line in lines:
        line.worst = [worst for *_, worst in sorted(candidates[line.site])[:WORST_SHOWN]]


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
