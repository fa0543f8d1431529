"""Availability from the rollups: known histories give known figures, to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fleet.availability_models import AvailabilityTally, Outage
from fleet.extensions import db
from fleet.services import enrolment, heartbeats
from fleet.services.availability import reports
from fleet.services.availability.windows import window_of
from fleet.services.sweep import enforce_timeouts
from fleet.tokens import hash_token
from tests.services.availability_support import (
    expect_off,
    move,
    naive_buckets,
    rounded,
    stored_buckets,
)

# 10:00 UTC on a Wednesday: the 24 h window starts at 11:00 the day before.
T0 = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def beat(token: str, now: datetime) -> None:
    heartbeats.accept_heartbeat(hash_token(token), heartbeats.Telemetry(), now)


def test_it_counts_each_tier_of_a_silent_device_to_the_second(make_device):
    device = make_device("kiosk-1", now=T0)
    enforce_timeouts(at(61))  # temporarily offline
    enforce_timeouts(at(301))  # disconnected
    beat(device.token, at(601))  # connected again
    window, seconds = reports.device_availability("kiosk-1", "24h", at(3600))
    assert window.start == at(3600) - timedelta(hours=23)
    assert seconds.as_dict() == {
        "connected": 61 + 2999,
        "temporarily_offline": 240,
        "disconnected": 300,
        "off_hours": 0,
    }
    assert seconds.expected_on == 3600
    assert seconds.availability == pytest.approx(3060 / 3600)


def test_it_leaves_expected_off_time_out_of_availability(make_device):
    device = make_device("kiosk-1", now=T0)
    expect_off(device, "off_hours", at(600))
    move(device, "disconnected", at(900))  # silent at night: not an outage
    expect_off(device, None, at(1800))  # opens again, still disconnected
    _, seconds = reports.device_availability("kiosk-1", "24h", at(2400))
    assert seconds.as_dict() == {
        "connected": 600,
        "temporarily_offline": 0,
        "disconnected": 600,
        "off_hours": 1200,
    }
    assert seconds.availability == pytest.approx(0.5)
    [outage] = db.session.execute(select(Outage)).scalars()
    assert (outage.started_at, outage.ended_at) == (at(1800), None)


def test_a_device_never_expected_on_has_no_availability(make_device):
    device = make_device("kiosk-1", now=T0)
    expect_off(device, "maintenance", T0)
    _, seconds = reports.device_availability("kiosk-1", "7d", at(7200))
    assert seconds.availability is None
    assert seconds.off_hours == 7200


def test_a_device_added_but_never_heard_is_disconnected_since_it_was_added(app):
    enrolment.add_device("kiosk-1", T0)
    _, seconds = reports.device_availability("kiosk-1", "24h", at(100))
    assert seconds.as_dict()["disconnected"] == 100
    assert seconds.availability == 0


def test_the_first_heartbeat_of_an_added_device_starts_from_its_enrolment(app):
    token = enrolment.add_device("kiosk-1", T0)
    beat(token, at(100))
    _, seconds = reports.device_availability("kiosk-1", "24h", at(400))
    assert (seconds.disconnected, seconds.connected) == (100, 300)
    [outage] = db.session.execute(select(Outage)).scalars()
    assert (outage.started_at, outage.ended_at, outage.ended_by) == (T0, at(100), "connected")


def test_the_rollups_split_at_utc_midnight(make_device):
    device = make_device("kiosk-1", now=T0.replace(hour=23))
    move(device, "disconnected", T0.replace(hour=23, minute=30))
    move(device, "connected", T0.replace(hour=23) + timedelta(hours=2))
    days = rounded(stored_buckets(device.id, "day"))
    assert days == {
        T0.date(): (1800.0, 0.0, 1800.0, 0.0),
        T0.date() + timedelta(days=1): (0.0, 0.0, 3600.0, 0.0),
    }


def test_the_day_windows_start_at_utc_midnight(make_device):
    make_device("kiosk-1", now=T0 - timedelta(days=40))
    window, seconds = reports.device_availability("kiosk-1", "30d", T0)
    assert window.start == datetime(2026, 10, 6, tzinfo=UTC)
    assert seconds.connected == (T0 - window.start).total_seconds()
    assert window_of("7d", T0).start == datetime(2026, 10, 29, tzinfo=UTC)


def test_a_late_committing_event_takes_effect_at_the_tally(make_device):
    device = make_device("kiosk-1", now=T0)
    move(device, "temporarily_offline", at(100))
    move(device, "disconnected", at(50))  # read its clock before the other committed
    _, seconds = reports.device_availability("kiosk-1", "24h", at(200))
    assert (seconds.connected, seconds.temporarily_offline, seconds.disconnected) == (100, 0, 100)


def test_the_rollups_agree_with_the_raw_events_after_a_sweep_of_many(make_device):
    devices = [make_device(f"kiosk-{n}", now=T0) for n in range(60)]
    enforce_timeouts(at(61))
    enforce_timeouts(at(400))
    for device in devices:
        assert rounded(stored_buckets(device.id, "day")) == rounded(
            naive_buckets(device.id, "day", at(400))
        )
    tally = db.session.get(AvailabilityTally, devices[0].id)
    assert (tally.status, tally.tallied_to) == ("disconnected", at(400))
    assert db.session.execute(select(Outage)).scalars().all()[0].reason.startswith("no heartbeat")


def test_a_report_sums_devices_per_site_and_for_the_fleet(make_device):
    first = make_device("a-1", now=T0, site="north")
    make_device("a-2", now=T0, site="north")
    make_device("b-1", now=T0, site="south")
    move(first, "disconnected", at(3600))
    now = at(7200)
    report = reports.availability_report(T0.date(), T0.date(), "site", now)
    by_site = {row.key: row for row in report.rows}
    assert by_site["north"].devices == 2
    assert by_site["north"].seconds.connected == 3600 + 7200
    assert by_site["north"].seconds.availability == pytest.approx(10800 / 14400)
    assert by_site["north"].outages == 1
    assert by_site["south"].seconds.availability == 1
    [fleet] = reports.availability_report(T0.date(), T0.date(), "fleet", now).rows
    assert fleet.devices == 3
    assert fleet.seconds.expected_on == 3 * 7200


def test_a_past_report_stops_at_its_last_day(make_device):
    device = make_device("kiosk-1", now=T0 - timedelta(days=3))
    move(device, "disconnected", T0 - timedelta(days=1))
    report = reports.availability_report(
        (T0 - timedelta(days=3)).date(), (T0 - timedelta(days=2)).date(), "device", T0
    )
    [row] = report.rows
    # Enrolled at 10:00 three days ago: 14 h of that day and the whole next one, all connected.
    assert row.seconds.connected == 14 * 3600 + 86400
    assert row.seconds.disconnected == 0
