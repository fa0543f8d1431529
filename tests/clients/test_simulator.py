"""Each simulator behaviour against a live server on the test's database.

The simulator is a client: which database the server runs on does not change
what it does (the server itself is tested on both backends by the API tests),
so these run on SQLite only; the smoke test runs on both.
"""

from __future__ import annotations

import itertools
import re
import statistics
import time

import pytest
from sqlalchemy import select

from clients.sim_fleet import SITES, fleet_layout, slug
from clients.simulator import Settings, Simulator
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.services import enrolment, reconnects
from fleet.timeutil import utcnow
from tests.clients.conftest import device_of, wait_for
from tests.conftest import ENROLLMENT_KEY
from tests.helpers import event_kinds, events_of
from tests.servers import free_port

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

OFFLINE = ("connected", "temporarily_offline", "system")
BACK = ("temporarily_offline", "connected", "device")


def stored(live, uid: str) -> Device | None:
    with live.context():
        device = db.session.execute(select(Device).where(Device.uid == uid)).scalar_one_or_none()
        if device is not None:
            db.session.expunge(device)
        return device


def all_stored(live) -> list[Device]:
    with live.context():
        found = list(db.session.execute(select(Device)).scalars())
        db.session.expunge_all()
        return found


def status_events(live, uid: str) -> list[tuple]:
    with live.context():
        return events_of(uid)


def test_it_enrols_devices_with_sites_and_names_that_look_real(live_server, run_simulator):
    live = live_server()
    run_simulator(live.url, devices=6, mix={"steady": 1})
    found = wait_for(lambda: len(all_stored(live)) == 6 and all_stored(live), timeout=10)
    sites = {site for site, _ in SITES}
    for device in found:
        assert device.site in sites
        assert re.fullmatch(rf"sim-{slug(device.site)}-\d{{3}}", device.uid)
        assert re.fullmatch(r"[A-Z][a-z]+(-[a-z]+)?( [A-Za-z-]+)* \d+", device.name)
        assert device.status == "connected"


def test_it_beats_at_the_servers_interval_divided_by_the_time_scale(live_server, run_simulator):
    live = live_server(HEARTBEAT_INTERVAL_SECONDS=2, DISCONNECT_AFTER_SECONDS=10)
    simulator = run_simulator(live.url, devices=1, mix={"steady": 1}, time_scale=4)
    device = simulator.devices[0]
    beats = wait_for(
        lambda: (steps := [s for s in device.history if s.action == "heartbeat"])[5:] and steps,
        timeout=10,
    )
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(beats)]
    # 2 s / 4 = 0.5 s, give or take the 10% jitter; a busy machine only adds latency.
    assert min(gaps) >= 0.44, gaps
    assert statistics.median(gaps) <= 0.75, gaps


def test_it_flaky_device_drops_out_past_the_grace_period_and_comes_back(live_server, run_simulator):
    live = live_server()
    simulator = run_simulator(live.url, devices=1, mix={"flaky": 1}, time_scale=8)
    uid = simulator.devices[0].uid
    events = wait_for(
        lambda: BACK in (found := status_events(live, uid)) and found, timeout=15, sweep=live.sweep
    )
    assert events.index(OFFLINE) < events.index(BACK)
    assert all(to != "disconnected" for _, to, _ in events)


def test_it_dying_device_is_disconnected_and_stays_silent(live_server, run_simulator):
    live = live_server(DISCONNECT_AFTER_SECONDS=3)
    simulator = run_simulator(live.url, devices=1, mix={"dying": 1}, time_scale=8)
    uid = simulator.devices[0].uid
    gone = wait_for(
        lambda: (device := stored(live, uid)) and device.status == "disconnected" and device,
        timeout=10,
        sweep=live.sweep,
    )
    time.sleep(1.0)
    assert stored(live, uid).last_heartbeat_at == gone.last_heartbeat_at
    assert simulator.devices[0].state == "dead"


def test_it_intermittent_device_is_silent_for_a_while_then_back(live_server, run_simulator):
    live = live_server(DISCONNECT_AFTER_SECONDS=10)
    simulator = run_simulator(live.url, devices=1, mix={"intermittent": 1}, time_scale=8)
    uid = simulator.devices[0].uid
    wait_for(lambda: BACK in status_events(live, uid), timeout=15, sweep=live.sweep)
    with live.context():
        ages = db.session.execute(
            select(DeviceEvent.heartbeat_age_seconds)
            .join(Device, Device.id == DeviceEvent.device_id)
            .where(Device.uid == uid, DeviceEvent.from_status == "temporarily_offline")
        ).scalars()
        # Silent for at least three intervals, however fast the story runs.
        assert max(ages) >= 3


def test_it_too_fast_device_is_rate_limited_and_honours_retry_after(live_server, run_simulator):
    live = live_server(
        HEARTBEAT_INTERVAL_SECONDS=2, DISCONNECT_AFTER_SECONDS=10, HEARTBEAT_MIN_INTERVAL_SECONDS=1
    )
    simulator = run_simulator(live.url, devices=1, mix={"too_fast": 1})
    device = simulator.devices[0]
    wait_for(
        lambda: (
            sum(s.status == 429 for s in device.history) >= 2
            and sum(s.status == 200 for s in device.history) >= 3
        ),
        timeout=10,
    )
    steps = [s for s in device.history if s.action == "heartbeat"]
    # Limited about once per accepted beat: it backs off rather than hammering the server.
    assert sum(s.status == 429 for s in steps) <= sum(s.status == 200 for s in steps) + 1
    for limited, following in itertools.pairwise(steps):
        if limited.status == 429:
            assert limited.retry_after is not None
            assert following.at >= limited.at + limited.retry_after
    assert stored(live, device.uid).status == "connected"


@pytest.mark.parametrize("reconnect_by", ["register", "resume"])
def test_it_honours_a_reconnect_request_after_the_delay(live_server, run_simulator, reconnect_by):
    live = live_server(DISCONNECT_AFTER_SECONDS=10)
    simulator = run_simulator(live.url, devices=1, mix={"steady": 1}, time_scale=4)
    device = simulator.devices[0]
    device.reconnect_by = reconnect_by
    wait_for(lambda: stored(live, device.uid), timeout=10)
    with live.context():
        reconnects.request_reconnect(device.uid, "test", utcnow(), delay_seconds=1)
    delivered = wait_for(
        lambda: (found := stored(live, device.uid)).reconnect_state == "delivered" and found,
        timeout=10,
    )
    if reconnect_by == "register":
        wait_for(lambda: simulator.journal.counts["re_registered"] == 1, timeout=10)
    else:
        wait_for(lambda: simulator.journal.counts["resumed"] == 1, timeout=10)
    again = stored(live, device.uid)
    assert (again.last_heartbeat_at - delivered.reconnect_delivered_at).total_seconds() >= 1
    with live.context():
        assert ("re_enrolled" in event_kinds(device.uid)) is (reconnect_by == "register")


def test_it_waits_for_a_server_that_is_down_and_enrols_once_it_is_up(live_server, run_simulator):
    port = free_port()
    simulator = run_simulator(f"http://127.0.0.1:{port}", devices=3, mix={"steady": 1})
    wait_for(lambda: simulator.journal.counts["unreachable"] >= 3, timeout=10)
    assert simulator.journal.counts["enrolled"] == 0
    live = live_server(port=port)
    wait_for(lambda: len(all_stored(live)) == 3, timeout=20)
    # The server stores a device before the simulator has read its answer.
    wait_for(lambda: simulator.journal.counts["enrolled"] >= 3, timeout=10)
    assert simulator.journal.counts["enrolled"] == 3


def test_it_stops_the_run_when_the_enrolment_key_is_wrong(live_server):
    live = live_server()
    simulator = Simulator(Settings(server=live.url, enrollment_key="wrong", devices=2, duration=10))
    started = time.monotonic()
    assert simulator.run() == 2
    assert time.monotonic() - started < 5
    assert "HTTP 401" in (simulator.fatal or "")
    assert ENROLLMENT_KEY not in simulator.fatal
    assert device_of(simulator, "steady").token is None


def test_a_device_known_to_the_server_waits_for_an_operators_leave(live_server, run_simulator):
    live = live_server()
    uid = fleet_layout(1)[0].uid
    with live.context():
        enrolment.register_device(uid, utcnow())  # enrolled before; the simulator lacks its token
    simulator = run_simulator(live.url, devices=1, mix={"steady": 1}, time_scale=20)
    time.sleep(1.0)
    assert not simulator.fatal and not simulator.stopping  # asking again, not given up
    assert event_kinds_of(live, uid) == ["registered"]
    with live.context():
        enrolment.allow_re_enrolment(uid, "ops@example.com", utcnow(), minutes=5)
    wait_for(lambda: "re_enrolled" in event_kinds_of(live, uid), timeout=20)


def event_kinds_of(live, uid: str) -> list[str]:
    with live.context():
        return event_kinds(uid)
