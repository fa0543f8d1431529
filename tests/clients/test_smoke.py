"""Smoke: the server and a simulated fleet, run fast, show every tier, flapping and a reconnect."""

from __future__ import annotations

from sqlalchemy import select

from fleet.extensions import db
from fleet.models import Device
from fleet.services import reconnects
from fleet.services.queries import fleet_counts
from fleet.timeutil import utcnow
from tests.clients.conftest import device_of, wait_for
from tests.helpers import event_kinds

TIERS = ("connected", "temporarily_offline", "disconnected")
# Enough of each misbehaviour to show quickly; too_fast has its own test, and
# beating four times faster than this fast story would only load the machine.
MIX = {"steady": 4, "flaky": 3, "dying": 2, "intermittent": 2}


def test_it_shows_every_tier_flapping_and_a_reconnect_round_trip(live_server, run_simulator):
    live = live_server(RECONNECT_DELAY_SECONDS=1)
    simulator = run_simulator(live.url, devices=11, mix=MIX, time_scale=3)
    steady = device_of(simulator, "steady")
    wait_for(lambda: steady.token, timeout=10)
    with live.context():
        reconnects.request_reconnect(steady.uid, "smoke test", utcnow())
    seen: dict[str, int] = {}

    def everything_shown() -> bool:
        with live.context():
            for name, count in fleet_counts(utcnow()).items():
                seen[name] = max(seen.get(name, 0), count)
        return all(seen.get(name) for name in (*TIERS, "flapping"))

    wait_for(everything_shown, timeout=30, every=0.2, sweep=live.sweep)
    with live.context():
        device = db.session.execute(select(Device).where(Device.uid == steady.uid)).scalar_one()
        assert device.reconnect_state == "delivered"
        kinds = event_kinds(steady.uid)
    assert kinds.index("reconnect_delivered") > kinds.index("reconnect_requested")
    # The device collected it, waited the delay, then re-registered or resumed.
    counts = simulator.journal.counts
    assert counts["re_registered"] + counts["resumed"] == 1
    if steady.reconnect_by == "register":
        assert "re_enrolled" in kinds[kinds.index("reconnect_delivered") :]
