"""The history job moves idle tallies on: figures unchanged, the next change folds little."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet.availability_models import AvailabilityTally
from fleet.extensions import db
from fleet.services.availability import reports, sites, tally
from tests.services.availability_support import (
    device_hours_per_site,
    expect_off,
    move,
    naive_buckets,
    rounded,
    site_hours,
    stored_buckets,
)

T0 = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=3, hours=2, minutes=17)


def _figures(now: datetime) -> dict[str, object]:
    figures: dict[str, object] = {}
    for window in ("24h", "7d", "30d"):
        for uid in ("mall-1", "mall-2"):
            _, seconds = reports.device_availability(uid, window, now)
            figures[f"{uid} {window}"] = {k: round(v, 3) for k, v in seconds.as_dict().items()}
    lines = sites.sites_screen("", "name", 1, now).sites
    figures["sites"] = {line.site: round(line.day.connected, 3) for line in lines}
    return figures


def _stable_site(make_device):
    first = make_device("mall-1", now=T0, site="Mall")
    second = make_device("mall-2", now=T0, site="Mall")
    move(first, "disconnected", T0 + timedelta(hours=5))
    expect_off(second, "off_hours", T0 + timedelta(hours=20))
    return first, second


def test_a_checkpoint_moves_idle_tallies_on_and_changes_no_figure(make_device):
    first, second = _stable_site(make_device)
    before = _figures(LATER)
    assert tally.checkpoint(LATER) == 2
    assert _figures(LATER) == before
    for device in (first, second):
        assert db.session.get(AvailabilityTally, device.id).tallied_to == LATER
    assert site_hours() == device_hours_per_site()


def test_the_change_after_a_checkpoint_folds_from_it_and_agrees_with_the_events(make_device):
    first, second = _stable_site(make_device)
    tally.checkpoint(LATER)
    move(first, "connected", LATER + timedelta(minutes=40))
    move(second, "disconnected", LATER + timedelta(minutes=50))
    end = LATER + timedelta(hours=1)
    for device in (first, second):
        assert rounded(stored_buckets(device.id, "day")) == rounded(
            naive_buckets(device.id, "day", LATER + timedelta(minutes=50))
        )
    # The window: 14:00 the day before to 13:17; back at 12:57.
    assert _figures(end)["mall-1 24h"] == {
        "connected": 20 * 60.0,
        "temporarily_offline": 0.0,
        "disconnected": 22 * 3600 + 57 * 60.0,
        "off_hours": 0.0,
    }


def test_a_tally_moved_lately_is_left_alone(make_device):
    device = make_device("mall-1", now=T0, site="Mall")
    move(device, "disconnected", LATER - timedelta(minutes=10))
    assert tally.checkpoint(LATER) == 0
    assert db.session.get(AvailabilityTally, device.id).tallied_to == LATER - timedelta(minutes=10)
