"""The Sites page's figures: site hour rollups kept equal to the device hours summed per site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from fleet.availability_models import AvailabilitySiteHour
from fleet.extensions import db
from fleet.services import enrolment
from fleet.services.availability import rebuild, reports, sites
from fleet.services.sweep import enforce_timeouts
from tests.helpers import configure
from tests.services.availability_support import device_hours_per_site, move, site_hours

T0 = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


def _fleet(make_device):
    """Two sites and a device without one, each with a day of changes, and a sweep of them all."""
    devices = [
        make_device("mall-1", now=T0, site="Mall"),
        make_device("mall-2", now=T0, site="Mall"),
        make_device("depot-1", now=T0, site="Depot"),
        make_device("loose-1", now=T0),
    ]
    for n, device in enumerate(devices):
        move(device, "temporarily_offline", T0 + timedelta(hours=2, minutes=7 * n))
        move(device, "connected", T0 + timedelta(hours=5, seconds=13 * n))
    enforce_timeouts(T0 + timedelta(hours=30))
    return devices


def _day_seconds(uids: list[str], now: datetime) -> dict[str, float]:
    totals: dict[str, float] = {}
    for uid in uids:
        _, seconds = reports.device_availability(uid, "24h", now)
        for name, value in seconds.as_dict().items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: round(value, 3) for name, value in totals.items()}


def test_the_site_hours_are_the_device_hours_summed_per_site(make_device):
    _fleet(make_device)
    assert site_hours() == device_hours_per_site()
    assert {site for site, _ in site_hours()} == {"Mall", "Depot", ""}


def test_a_sites_24_hour_figure_is_its_devices_to_the_second(make_device):
    _fleet(make_device)
    now = T0 + timedelta(hours=31, minutes=20)
    screen = sites.sites_screen("", "worst", 1, now)
    lines = {line.site: line for line in screen.sites}
    mall = {name: round(v, 3) for name, v in lines["Mall"].day.as_dict().items()}
    assert mall == _day_seconds(["mall-1", "mall-2"], now)
    assert lines["Mall"].day.disconnected > 0
    searched = sites.sites_screen("dep", "worst", 1, now)
    assert [line.site for line in searched.sites] == ["Depot"]


def test_a_device_that_moves_site_takes_its_hours_along(make_device):
    devices = _fleet(make_device)
    now = T0 + timedelta(hours=31)
    enrolment.register_device("mall-2", now, site="Depot", current_token=devices[1].token)
    assert site_hours() == device_hours_per_site()
    lines = {line.site: line for line in sites.sites_screen("", "name", 1, now).sites}
    assert lines["Mall"].devices == 1
    mall = {name: round(v, 3) for name, v in lines["Mall"].day.as_dict().items()}
    assert mall == _day_seconds(["mall-1"], now)
    depot = {name: round(v, 3) for name, v in lines["Depot"].day.as_dict().items()}
    assert depot == _day_seconds(["depot-1", "mall-2"], now)


def test_leaving_a_site_for_none_files_the_hours_under_no_site(make_device):
    devices = _fleet(make_device)
    enrolment.register_device(
        "depot-1", T0 + timedelta(hours=31), site="", current_token=devices[2].token
    )
    assert site_hours() == device_hours_per_site()
    assert "Depot" not in {site for site, _ in site_hours()}


def _sites_day(now: datetime) -> dict[str, dict[str, float]]:
    """Every site's 24-hour seconds as the Sites page shows them, over all its pages."""
    screen = sites.sites_screen("", "name", 1, now)
    lines = list(screen.sites)
    for page in range(2, screen.pages + 1):
        lines += sites.sites_screen("", "name", page, now).sites
    return {
        line.site: {name: round(value, 3) for name, value in line.day.as_dict().items()}
        for line in lines
    }


def test_a_rebuild_mends_site_hours_that_drifted(make_device):
    _fleet(make_device)
    now = T0 + timedelta(hours=30)
    before = _sites_day(now)
    db.session.execute(update(AvailabilitySiteHour).values(connected_seconds=123.0))
    db.session.commit()
    rebuild.rebuild()
    assert site_hours() == device_hours_per_site()
    assert _sites_day(now) == before


def test_a_rebuild_of_a_few_devices_leaves_the_site_hours_right(make_device):
    devices = _fleet(make_device)
    now = T0 + timedelta(hours=30)
    before = _sites_day(now)
    rebuild.rebuild(device_ids=[devices[0].id])
    assert site_hours() == device_hours_per_site()
    assert _sites_day(now) == before


def test_pruning_drops_site_hours_with_the_device_hours(app, make_device):
    _fleet(make_device)
    configure(app, EVENT_RETENTION_DAYS=93, ROLLUP_RETENTION_DAYS=400)
    now = T0 + timedelta(days=5)
    report = rebuild.prune_history(now)
    assert report.site_hours > 0
    # What is left is the last 24 hours, which the job's checkpoint wrote just before.
    oldest = db.session.execute(select(func.min(AvailabilitySiteHour.hour))).scalar_one()
    assert oldest >= now - timedelta(hours=24)
    assert site_hours() == device_hours_per_site()
