"""What each dashboard screen is given: one service call per screen or action."""

from datetime import timedelta
from functools import partial

from fleet.services import dashboard, heartbeats
from fleet.services.queries import DeviceFilter
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import device_row, snapshot_of

T0 = utcnow().replace(microsecond=0)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def test_the_fleet_screen_has_a_page_the_counters_and_the_sites(make_device):
    make_device("kiosk-1", now=T0, site="Lobby")
    make_device("kiosk-2", now=T0, site="Atrium")
    screen = dashboard.fleet_screen(DeviceFilter(), at(1))
    assert [device.uid for device, _ in screen.page.items] == ["kiosk-1", "kiosk-2"]
    assert (screen.counts["connected"], screen.counts["total"]) == (2, 2)
    assert screen.sites == ["Atrium", "Lobby"]
    assert screen.cursor < screen.now


def test_a_poll_after_nothing_changed_is_none(make_device):
    make_device("kiosk-1", now=T0)
    assert dashboard.poll_fleet(DeviceFilter(), at(1), [], at(2)) is None


def test_a_poll_is_none_when_only_devices_off_screen_changed_and_the_counters_did_not(
    make_device,
):
    shown = make_device("kiosk-1", now=T0)
    elsewhere = make_device("kiosk-2", now=T0, battery_level=90)
    screen = dashboard.fleet_screen(DeviceFilter(per_page=25), at(1))
    heartbeat = heartbeats.record_heartbeat
    heartbeat(snapshot_of(elsewhere.token), heartbeats.Telemetry(battery_level=20), at(2))
    poll = partial(dashboard.poll_fleet, DeviceFilter(), at(1), [shown.id], at(3))
    assert poll(seen=screen.tag) is None
    assert poll(seen=None) is not None  # a page that never said what it shows gets the counters


def test_a_poll_sends_the_changed_rows_and_which_left_the_view(make_device):
    shown = [make_device(uid, now=T0).id for uid in ("kiosk-1", "kiosk-2")]
    make_device("kiosk-3", now=at(50))
    enforce_timeouts(at(61))  # kiosk-1 and kiosk-2 go temporarily offline
    poll = dashboard.poll_fleet(DeviceFilter(status="connected"), at(1), shown, at(62))
    assert sorted(device.uid for device, _ in poll.rows) == ["kiosk-1", "kiosk-2"]
    assert poll.outside_view == set(shown)
    assert poll.counts["temporarily_offline"] == 2


def test_reconnecting_every_matching_device_spreads_their_delays(make_device):
    for n in range(3):
        make_device(f"kiosk-{n}", now=T0, site="Lobby")
    make_device("elsewhere", now=T0, site="Atrium")
    action = dashboard.reconnect_matching(DeviceFilter(site="Lobby"), "ops", at(1))
    assert (action.state, action.done) == ("done", 3)
    assert device_row("elsewhere").reconnect_state is None


def test_reconnecting_one_device_returns_it_with_its_flap_count_and_the_counters(make_device):
    make_device("kiosk-1", now=T0)
    done = dashboard.reconnect_device("kiosk-1", "ops", at(1))
    assert (done.device.reconnect_state, done.flaps) == ("pending", 0)
    assert done.counts["reconnect_pending"] == 1


def test_the_device_screen_has_its_thresholds_timeline_and_events(make_device):
    make_device("kiosk-1", now=T0, grace_period_seconds=5)
    screen = dashboard.device_screen("kiosk-1", at(10))
    assert screen.summary.device.uid == "kiosk-1"
    assert screen.thresholds.grace == 5 and screen.defaults.grace != 5
    assert screen.timeline and screen.events.items
