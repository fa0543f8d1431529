"""Each command kind end to end: requested on the server, carried out and acknowledged by the
simulated kiosk over HTTP. On both backends, since the command's whole life crosses the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clients.images import tiny_png
from fleet.extensions import db
from fleet.models import DeviceCommand, Screenshot
from fleet.services import commands
from fleet.timeutil import utcnow
from tests.clients.conftest import wait_for
from tests.helpers import event_kinds

# A reconnect or a reboot ends in the kiosk resuming or enrolling again: both ways.
CASES = [
    ("reconnect", "register"),
    ("reconnect", "resume"),
    ("restart_app", "resume"),
    ("reboot", "register"),
    ("reboot", "resume"),
    ("refresh_content", "resume"),
    ("screenshot", "resume"),
]


def command_state(live, command_id: int) -> DeviceCommand:
    with live.context():
        command = db.session.get(DeviceCommand, command_id)
        db.session.expunge(command)
        return command


@pytest.mark.parametrize(("kind", "reconnect_by"), CASES)
def test_the_kiosk_carries_out_and_acknowledges_each_kind(
    live_server, run_simulator, kind, reconnect_by
):
    live = live_server(DISCONNECT_AFTER_SECONDS=30)
    simulator = run_simulator(live.url, devices=1, mix={"steady": 1}, time_scale=4)
    device = simulator.devices[0]
    device.reconnect_by = reconnect_by
    wait_for(lambda: device.token, timeout=10)
    with live.context():
        requested = commands.request_command(device.uid, kind, {"delay_seconds": 1}, "t", utcnow())
        command_id = requested.command.id
    done = wait_for(
        lambda: (found := command_state(live, command_id)).state == "ok" and found, timeout=30
    )
    assert done.acknowledged_at > done.delivered_at
    assert any(step.action == f"command:{kind}" for step in device.history) or kind == "reconnect"
    with live.context():
        kinds = event_kinds(device.uid)
        assert kinds.index("command_delivered") < kinds.index("command_acknowledged")
        if kind == "screenshot":
            shot = db.session.scalars(select(Screenshot)).one()
            assert (shot.command_id, shot.data) == (command_id, tiny_png())
        if kind == "reboot":
            assert simulator.journal.counts["reboots"] == 1
            assert ("re_enrolled" in kinds) is (reconnect_by == "register")
