"""Operating hours end to end: closing silences, opening with a silent device is an outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fleet.alert_models import Incident, Notification
from fleet.extensions import db
from fleet.models import DeviceEvent
from fleet.services import hours, queries
from fleet.services.device_state import get_device
from fleet.services.sweep import enforce_timeouts
from tests.services.alerts.conftest import heartbeat

# Tuesday 1 December 2026; the site opens 08:00-20:00 UTC on weekdays.
CLOSING = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
OPENING = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
WEEKDAYS = {
    "timezone": "UTC",
    "weekly": {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}


def incidents() -> list[Incident]:
    db.session.expire_all()
    return list(db.session.execute(select(Incident).order_by(Incident.id)).scalars())


def events(uid: str, kind: str) -> list[DeviceEvent]:
    device = get_device(uid)
    query = select(DeviceEvent).where(DeviceEvent.device_id == device.id, DeviceEvent.kind == kind)
    return list(db.session.execute(query.order_by(DeviceEvent.id)).scalars())


def closed_shop(fleet, add_rule, count: int = 3):
    """A shop whose devices beat last just before closing, with a device rule and a site rule."""
    devices = fleet("shop", count)
    for device in devices:
        heartbeat(device, CLOSING - timedelta(minutes=1))
    add_rule()
    add_rule("stores", kind="site_outage")
    hours.set_site_hours("shop", WEEKDAYS, "ops@example.com", CLOSING - timedelta(hours=2))
    enforce_timeouts(CLOSING + timedelta(seconds=30))
    return devices


def test_a_site_closing_makes_its_silent_devices_off_hours_with_no_alert_and_no_flap(
    fleet, hook, add_rule, receiver
):
    devices = closed_shop(fleet, add_rule)
    enforce_timeouts(CLOSING + timedelta(minutes=10))
    now = CLOSING + timedelta(minutes=10)
    for device in devices:
        device = get_device(device.uid)
        assert (device.status, device.expected_off) == ("disconnected", "off_hours")
        assert queries.flap_count(device.id, now) == 0
        [state_change] = events(device.uid, "expected_off")
        assert state_change.details == {"expected_off": "off_hours"}
    assert incidents() == []
    assert db.session.execute(select(Notification)).first() is None
    counts = queries.fleet_counts(now)
    assert counts["off_hours"] == 3 and counts["maintenance"] == 0


def test_opening_with_a_silent_device_opens_an_incident_from_then(fleet, hook, add_rule, receiver):
    devices = closed_shop(fleet, add_rule, count=1)
    enforce_timeouts(CLOSING + timedelta(minutes=10))
    enforce_timeouts(OPENING + timedelta(seconds=5))
    uid = devices[0].uid
    assert get_device(uid).expected_off is None
    assert incidents() == []  # within its grace: it may still beat
    enforce_timeouts(OPENING + timedelta(seconds=70))
    [silent] = events(uid, "silent_at_opening")
    assert silent.reason == "expected at 08:00, silent since 19:59"
    [incident] = incidents()
    assert (incident.kind, incident.state) == ("disconnected", "open")
    assert incident.opened_at == OPENING + timedelta(seconds=70)


def test_a_device_that_beats_after_opening_raises_nothing(fleet, hook, add_rule, receiver):
    devices = closed_shop(fleet, add_rule, count=2)
    enforce_timeouts(CLOSING + timedelta(minutes=10))
    enforce_timeouts(OPENING + timedelta(seconds=5))
    heartbeat(devices[0], OPENING + timedelta(seconds=20))
    heartbeat(devices[1], OPENING + timedelta(seconds=30))
    enforce_timeouts(OPENING + timedelta(seconds=70))
    assert events(devices[0].uid, "silent_at_opening") == []
    assert incidents() == []
    assert get_device(devices[0].uid).status == "connected"


def test_a_device_that_beats_at_night_stays_connected_and_expected_off(fleet, hook, add_rule):
    devices = closed_shop(fleet, add_rule, count=1)
    heartbeat(devices[0], CLOSING + timedelta(hours=3))
    device = get_device(devices[0].uid)
    assert (device.status, device.expected_off) == ("connected", "off_hours")


def test_an_open_site_outage_counts_only_devices_expected_on(fleet, hook, add_rule, receiver):
    devices = fleet("shop", 6)
    for device in devices:
        heartbeat(device, OPENING)
    never_open = {"timezone": "UTC", "weekly": {}}
    for device in devices[:3]:
        hours.set_device_hours(device.uid, never_open, "ops", OPENING)
    add_rule("stores", kind="site_outage", percent=50)
    # Half the site goes silent, but that half is off hours: no outage.
    for device in devices[3:]:
        heartbeat(device, OPENING + timedelta(seconds=290))
    enforce_timeouts(OPENING + timedelta(seconds=301))
    assert get_device(devices[0].uid).status == "disconnected"
    assert [i for i in incidents() if i.kind == "site_outage"] == []
    # Two of the three expected on go silent too: an outage.
    heartbeat(devices[5], OPENING + timedelta(seconds=580))
    enforce_timeouts(OPENING + timedelta(seconds=291 + 300))
    [incident] = [i for i in incidents() if i.kind == "site_outage"]
    assert incident.site == "shop"


def test_a_pending_incident_waits_through_the_night_and_is_measured_from_the_opening(
    fleet, hook, add_rule, receiver
):
    from fleet.services.alerts import evaluate

    [device] = fleet("shop", 1)
    heartbeat(device, CLOSING - timedelta(minutes=10))
    add_rule(for_seconds=600)
    hours.set_site_hours("shop", WEEKDAYS, "ops", CLOSING - timedelta(hours=2))
    enforce_timeouts(CLOSING - timedelta(minutes=4))  # disconnected: pending until 20:06
    [incident] = incidents()
    assert incident.state == "pending"
    enforce_timeouts(CLOSING + timedelta(seconds=30))
    evaluate.tick(CLOSING + timedelta(minutes=10))
    assert incidents()[0].state == "pending"  # off hours: nothing fires
    enforce_timeouts(OPENING + timedelta(seconds=5))
    enforce_timeouts(OPENING + timedelta(seconds=70))
    evaluate.tick(OPENING + timedelta(minutes=5))
    assert incidents()[0].state == "pending"  # ten minutes from the opening, not from 19:56
    evaluate.tick(OPENING + timedelta(seconds=70 + 600))
    assert incidents()[0].state == "open"


def test_screens_coming_on_one_by_one_at_opening_are_no_site_outage(
    fleet, hook, add_rule, receiver
):
    devices = closed_shop(fleet, add_rule, count=3)
    enforce_timeouts(CLOSING + timedelta(minutes=10))
    enforce_timeouts(OPENING + timedelta(seconds=5))
    heartbeat(devices[0], OPENING + timedelta(seconds=10))  # two of three still dark
    enforce_timeouts(OPENING + timedelta(seconds=15))
    assert incidents() == []
    enforce_timeouts(OPENING + timedelta(seconds=70))  # past the grace: an outage now
    assert [i.kind for i in incidents()] == ["site_outage"]
