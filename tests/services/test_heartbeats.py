from datetime import timedelta

import pytest

from fleet.errors import Unauthorized
from fleet.services import enrolment, heartbeats, reconnects
from fleet.services.heartbeats import Telemetry
from fleet.timeutil import utcnow
from fleet.tokens import hash_token
from tests.helpers import device_row, event_kinds, events_of, snapshot_of

T0 = utcnow().replace(microsecond=0)


def heartbeat(device, now, **telemetry):
    snapshot = snapshot_of(device.token)
    return heartbeats.record_heartbeat(snapshot, Telemetry(**telemetry), now)


def test_it_connects_a_device_added_by_an_administrator_on_its_first_heartbeat(app):
    token = enrolment.add_device("kiosk-1", T0, site="Lobby")
    assert device_row("kiosk-1").status == "disconnected"
    snapshot = snapshot_of(token)
    result = heartbeats.record_heartbeat(snapshot, Telemetry(), T0 + timedelta(seconds=5))
    assert result.status == "connected"
    assert events_of("kiosk-1") == [("disconnected", "connected", "device")]


def test_it_samples_telemetry_at_most_every_five_minutes(make_device):
    from sqlalchemy import func, select

    from fleet.extensions import db
    from fleet.models import TelemetrySample

    device = make_device("kiosk-1", now=T0)
    for minute in range(0, 11):
        heartbeat(device, T0 + timedelta(minutes=minute), battery_level=100 - minute)
    samples = db.session.execute(select(func.count()).select_from(TelemetrySample)).scalar_one()
    assert samples == 3  # minutes 0, 5 and 10


def test_it_marks_the_row_changed_only_when_something_visible_changes(make_device):
    device = make_device("kiosk-1", now=T0)
    heartbeat(device, T0 + timedelta(seconds=30), battery_level=50)
    changed = device_row("kiosk-1").changed_at
    heartbeat(device, T0 + timedelta(seconds=60), battery_level=50)
    assert device_row("kiosk-1").changed_at == changed
    heartbeat(device, T0 + timedelta(seconds=90), battery_level=49)
    assert device_row("kiosk-1").changed_at == T0 + timedelta(seconds=90)


def test_wifi_and_battery_jitter_inside_a_five_unit_band_is_not_a_visible_change(make_device):
    device = make_device("kiosk-1", now=T0)
    heartbeat(device, T0 + timedelta(seconds=30), battery_level=48, wifi_strength=-61)
    changed = device_row("kiosk-1").changed_at
    for second, (battery, wifi) in enumerate([(46, -64), (45.4, -62), (47, -65)], start=1):
        heartbeat(
            device, T0 + timedelta(seconds=30 + second), battery_level=battery, wifi_strength=wifi
        )
    row = device_row("kiosk-1")
    assert row.changed_at == changed
    assert (row.battery_level, row.wifi_strength) == (47, -65)  # stored exactly all the same
    heartbeat(device, T0 + timedelta(seconds=40), battery_level=47, wifi_strength=-66)
    assert device_row("kiosk-1").changed_at == T0 + timedelta(seconds=40)


def test_a_new_request_replaces_a_delivered_one(make_device):
    device = make_device("kiosk-1", now=T0)
    reconnects.request_reconnect("kiosk-1", "ops", T0, delay_seconds=1)
    assert heartbeat(device, T0 + timedelta(seconds=1)).should_reconnect
    reconnects.request_reconnect("kiosk-1", "ops", T0 + timedelta(seconds=2), delay_seconds=9)
    result = heartbeat(device, T0 + timedelta(seconds=3))
    assert (result.should_reconnect, result.reconnect_delay_seconds) == (True, 9)
    assert event_kinds("kiosk-1").count("reconnect_delivered") == 2


def test_a_token_rotated_mid_heartbeat_is_refused(make_device):
    device = make_device("kiosk-1")
    snapshot = snapshot_of(device.token)
    enrolment.register_device("kiosk-1", utcnow(), current_token=device.token)  # a new token
    reconnects.request_reconnect("kiosk-1", "ops", utcnow())  # the first write loses
    with pytest.raises(Unauthorized):
        heartbeats.record_heartbeat(snapshot, Telemetry(), utcnow())


def test_a_heartbeat_with_a_rotated_token_is_unauthorized(make_device):
    device = make_device("kiosk-1")
    enrolment.register_device("kiosk-1", utcnow(), current_token=device.token)
    with pytest.raises(Unauthorized):
        heartbeats.accept_heartbeat(hash_token(device.token), Telemetry(), utcnow())


def test_a_lost_race_is_planned_again_from_the_fresh_row(make_device):
    device = make_device("kiosk-1", now=T0, status="disconnected")
    stale = snapshot_of(device.token)
    reconnects.request_reconnect("kiosk-1", "ops", T0, delay_seconds=4)  # unseen by `stale`
    result = heartbeats.record_heartbeat(stale, Telemetry(), T0 + timedelta(seconds=1))
    assert (result.should_reconnect, result.reconnect_delay_seconds) == (True, 4)
    assert device_row("kiosk-1").status == "connected"
    assert event_kinds("kiosk-1")[-2:] == ["status", "reconnect_delivered"]
