"""Operating hours and availability together: the hours the schedule tick marks as expected
off are the off hours of the device's availability, not downtime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet.services import hours
from fleet.services.availability.reports import device_availability
from fleet.services.sweep import enforce_timeouts

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
NEVER_OPEN = {"timezone": "UTC", "weekly": {}}


def test_a_closed_sites_silent_hours_are_off_hours_not_downtime(make_device):
    make_device("k1", now=NOW, site="mall")
    hours.set_site_hours("mall", NEVER_OPEN, "ops", NOW + timedelta(minutes=30))
    enforce_timeouts(NOW + timedelta(minutes=60))  # silent long enough to be disconnected

    _, seconds = device_availability("k1", "24h", NOW + timedelta(minutes=90))

    assert seconds.connected == 30 * 60
    assert seconds.off_hours == 60 * 60
    assert seconds.disconnected == seconds.temporarily_offline == 0
    assert seconds.expected_on == 30 * 60


def test_a_window_ended_early_counts_as_expected_on_from_then(make_device):
    make_device("k1", now=NOW, site="mall")
    spec = hours.WindowSpec(site="mall", ends_at=NOW + timedelta(hours=2), note="screens")
    window = hours.create_window(spec, "ops", NOW + timedelta(minutes=10))
    hours.end_window(window.id, "ops", NOW + timedelta(minutes=40))

    _, seconds = device_availability("k1", "24h", NOW + timedelta(minutes=60))

    assert seconds.off_hours == 30 * 60
    assert seconds.expected_on == 30 * 60
