"""Bulk commands: every device a filtered view matches asked for a command, a chunk per
transaction, delays spread over the window, resumable, each request in the events log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from fleet.errors import InvalidInput
from fleet.extensions import db
from fleet.models import BulkAction, Device, DeviceCommand, DeviceEvent
from fleet.services import bulk, commands, heartbeats
from fleet.services.queries import DeviceFilter
from fleet.timeutil import utcnow
from tests.helpers import configure, snapshot_of

T0 = utcnow().replace(microsecond=0)
LOBBY = DeviceFilter(site="Lobby")


def lobby(make_device, count):
    devices = [make_device(f"kiosk-{n}", now=T0, site="Lobby") for n in range(count)]
    make_device("elsewhere", now=T0, site="Atrium")
    return devices


def pending(kind: str) -> dict[str, dict]:
    """uid -> params of each pending command of `kind`."""
    rows = db.session.execute(
        select(Device.uid, DeviceCommand.params)
        .join(Device, Device.id == DeviceCommand.device_id)
        .where(DeviceCommand.kind == kind, DeviceCommand.state == "pending")
    )
    return {uid: params for uid, params in rows}


def test_a_run_asks_each_matching_device_once_with_delays_spread_over_the_window(app, make_device):
    configure(app, BULK_CHUNK_SIZE=2, BULK_RECONNECT_SPREAD_SECONDS=60)
    lobby(make_device, 5)
    action = bulk.start_bulk_command(LOBBY, "reboot", {"delay_seconds": 10}, "ops", T0)
    assert (action.kind, action.params, action.total, action.state) == (
        "reboot",
        {"delay_seconds": 10},
        5,
        "running",
    )
    assert bulk.run_bulk_action(action.id, T0).state == "done"
    asked = pending("reboot")
    assert sorted(asked) == [f"kiosk-{n}" for n in range(5)]
    delays = [asked[f"kiosk-{n}"]["delay_seconds"] for n in range(5)]
    assert delays == [10, 22, 34, 46, 58]


def test_each_request_is_in_the_events_log_with_the_actor_and_the_run(app, make_device):
    lobby(make_device, 3)
    action = bulk.request_bulk_command(LOBBY, "refresh_content", {}, "ops@example.com", T0)
    events = db.session.scalars(
        select(DeviceEvent).where(DeviceEvent.kind == "command_requested")
    ).all()
    uids = db.session.scalars(select(Device.uid).where(Device.id.in_(e.device_id for e in events)))
    assert sorted(uids) == ["kiosk-0", "kiosk-1", "kiosk-2"]
    assert {event.actor for event in events} == {"ops@example.com"}
    assert {(e.details["bulk_action"], e.details["devices"]) for e in events} == {(action.id, 3)}


def test_a_newer_bulk_request_replaces_each_devices_pending_command_of_the_kind(app, make_device):
    lobby(make_device, 2)
    commands.request_command("kiosk-0", "screenshot", {}, "alice", T0)
    bulk.request_bulk_command(LOBBY, "screenshot", {}, "bob", T0 + timedelta(seconds=1))
    states = db.session.execute(
        select(DeviceCommand.requested_by, DeviceCommand.state).order_by(DeviceCommand.id)
    ).all()
    assert [tuple(row) for row in states] == [
        ("alice", "replaced"),
        ("bob", "pending"),
        ("bob", "pending"),
    ]
    replaced = db.session.scalar(
        select(Device.uid)
        .join(DeviceEvent, DeviceEvent.device_id == Device.id)
        .where(DeviceEvent.kind == "command_replaced")
    )
    assert replaced == "kiosk-0"


@pytest.mark.parametrize(
    ("view", "kind", "params"),
    [
        (DeviceFilter(), "reboot", {}),  # the whole fleet, by accident
        (DeviceFilter(sort="uid", page=2), "reboot", {}),  # sorting is no filter
        (LOBBY, "explode", {}),
        (LOBBY, "reboot", {"delay_seconds": -1}),
        (LOBBY, "reboot", {"colour": 1}),
    ],
)
def test_a_bad_bulk_request_is_refused_and_stores_nothing(app, make_device, view, kind, params):
    lobby(make_device, 2)
    with pytest.raises(InvalidInput):
        bulk.start_bulk_command(view, kind, params, "ops", T0)
    assert db.session.scalars(select(BulkAction)).all() == []
    assert db.session.scalars(select(DeviceCommand)).all() == []


def test_a_spread_delay_never_exceeds_what_one_request_may_ask(app, make_device):
    configure(app, BULK_RECONNECT_SPREAD_SECONDS=600)
    lobby(make_device, 2)
    bulk.request_bulk_command(LOBBY, "reboot", {"delay_seconds": 3500}, "ops", T0)
    assert sorted(p["delay_seconds"] for p in pending("reboot").values()) == [3500, 3600]


def test_a_run_whose_runner_died_is_resumed_and_asks_nobody_twice(app, make_device):
    configure(app, BULK_CHUNK_SIZE=2, BULK_STALL_SECONDS=60)
    lobby(make_device, 5)
    action = bulk.start_bulk_command(LOBBY, "restart_app", {}, "ops", T0)
    bulk.run_chunk(action.id, T0)  # then the worker is killed
    assert bulk.stalled_bulk_actions(T0 + timedelta(seconds=61)) == [action.id]
    bulk.run_bulk_action(action.id, T0 + timedelta(seconds=61))
    assert len(db.session.scalars(select(DeviceCommand)).all()) == 5
    assert bulk.get_bulk_action(action.id).done == 5


def test_the_next_heartbeat_carries_a_bulk_command_with_its_delay(app, make_device):
    configure(app, BULK_RECONNECT_SPREAD_SECONDS=0)
    [kiosk] = lobby(make_device, 1)
    bulk.request_bulk_command(LOBBY, "refresh_content", {"delay_seconds": 5}, "ops", T0)
    result = heartbeats.record_heartbeat(
        snapshot_of(kiosk.token), heartbeats.Telemetry(), T0 + timedelta(seconds=1)
    )
    [command] = result.commands
    assert (command.kind, command.params) == ("refresh_content", {"delay_seconds": 5})


def test_a_bulk_reconnect_through_the_command_path_stays_a_reconnect(app, make_device):
    lobby(make_device, 2)
    action = bulk.request_bulk_command(LOBBY, "reconnect", {}, "ops", T0)
    assert (action.kind, action.params, action.done) == ("reconnect", None, 2)
    reconnects = db.session.scalars(
        select(Device.uid)
        .join(DeviceEvent, DeviceEvent.device_id == Device.id)
        .where(DeviceEvent.kind == "reconnect_requested")
    ).all()
    assert sorted(reconnects) == ["kiosk-0", "kiosk-1"]
