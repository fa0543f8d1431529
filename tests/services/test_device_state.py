"""The kernel every writer shares: compare-and-set, its retry loop, deadlines and thresholds."""

from datetime import timedelta

import pytest

from fleet.errors import Contention, DeviceNotFound
from fleet.extensions import db
from fleet.services import device_state
from fleet.services.heartbeats import Telemetry, accept_heartbeat
from fleet.services.overrides import Overrides, set_overrides
from fleet.timeutil import utcnow
from fleet.tokens import hash_token
from tests.helpers import beat, device_row, event_kinds, snapshot_of, writes_refused

T0 = utcnow().replace(microsecond=0)


def test_a_write_planned_before_a_heartbeat_does_not_land(make_device):
    device = make_device("kiosk-1")
    seen = snapshot_of(device.token)
    accept_heartbeat(hash_token(device.token), Telemetry(), utcnow())
    assert not device_state.compare_and_set(seen, {"offline_due_at": seen.last_heartbeat_at})


def test_a_write_planned_before_a_state_change_does_not_land(make_device):
    device = make_device("kiosk-1")
    seen = snapshot_of(device.token)
    assert device_state.compare_and_set(seen, {"revision": seen.revision + 1})
    assert not device_state.compare_and_set(seen, {"site": "Lobby"})
    assert device_row("kiosk-1").site is None


def test_a_heartbeat_may_overwrite_the_heartbeat_time_it_did_not_see(make_device):
    device = make_device("kiosk-1", now=T0)
    seen = snapshot_of(device.token)
    accept_heartbeat(hash_token(device.token), Telemetry(), T0 + timedelta(seconds=10))
    later = T0 + timedelta(seconds=20)
    assert device_state.compare_and_set(seen, {"last_heartbeat_at": later}, same_heartbeat=False)


def test_the_retry_loop_returns_the_first_attempt_that_wins(app):
    tries = []

    def attempt(number):
        tries.append(number)
        return "won" if number == 2 else None

    assert device_state.retry_on_conflict(attempt) == "won"
    assert tries == [0, 1, 2]


def test_the_retry_loop_gives_up_with_contention_after_its_attempts(make_device):
    device = make_device("kiosk-1")
    stale = snapshot_of(device.token)
    device_state.compare_and_set(stale, {"revision": stale.revision + 1})
    db.session.commit()
    tries = []

    def attempt(number):
        tries.append(number)
        # Always the stale snapshot: every compare-and-set loses for real.
        return True if device_state.compare_and_set(stale, {"site": "Lobby"}) else None

    with pytest.raises(Contention, match="retry shortly"):
        device_state.retry_on_conflict(attempt)
    assert len(tries) == device_state.MAX_ATTEMPTS
    assert device_row("kiosk-1").site is None


def test_a_heartbeat_whose_writes_keep_losing_is_told_to_retry_and_changes_nothing(
    unlimited_client, make_device
):
    device = make_device("kiosk-1", now=T0, status="disconnected")
    with writes_refused("kiosk-1"):
        response = beat(unlimited_client, device.token, battery_level=50)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "contention"
    stored = device_row("kiosk-1")
    assert (stored.status, stored.last_heartbeat_at, stored.battery_level) == (
        "disconnected",
        T0,
        None,
    )
    assert event_kinds("kiosk-1") == ["registered"]


def test_a_threshold_change_whose_writes_keep_losing_is_contention(make_device):
    make_device("kiosk-1")
    with writes_refused("kiosk-1"), pytest.raises(Contention):
        set_overrides("kiosk-1", Overrides(heartbeat_interval_seconds=10), "ops", utcnow())
    assert device_row("kiosk-1").heartbeat_interval_seconds is None


def test_a_re_read_after_a_lost_race_finds_a_deleted_device_gone(app):
    with pytest.raises(DeviceNotFound):
        device_state.read_snapshot(12345)


def test_get_device_names_the_missing_uid(app):
    with pytest.raises(DeviceNotFound) as raised:
        device_state.get_device("nobody")
    assert raised.value.details == {"uid": "nobody"}


def test_thresholds_are_the_fleet_defaults_with_a_devices_overrides(make_device):
    device = make_device("kiosk-1", grace_period_seconds=5)
    thresholds = device_state.thresholds_of(device)
    defaults = device_state.fleet_defaults()
    assert (thresholds.interval, thresholds.grace, thresholds.disconnect_after) == (
        defaults.interval,
        5,
        defaults.disconnect_after,
    )


def test_deadlines_follow_from_the_heartbeat_time(app):
    defaults = device_state.fleet_defaults()
    values = device_state.deadline_values(T0, defaults)
    assert values == {
        "offline_due_at": T0 + timedelta(seconds=defaults.offline_after),
        "disconnect_due_at": T0 + timedelta(seconds=defaults.disconnect_after),
    }
    assert device_state.deadline_values(None, defaults) == {
        "offline_due_at": None,
        "disconnect_due_at": None,
    }
