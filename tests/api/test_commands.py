"""Remote commands through the admin API and the heartbeat, as integrations and kiosks use them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.schemas import HeartbeatResponse
from clients.images import tiny_png
from fleet.extensions import db
from fleet.models import DeviceCommand, DeviceEvent, Screenshot
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.api.admin_support import bearer, service_token
from tests.helpers import beat, configure, device_row, event_kinds

KINDS = ["reconnect", "restart_app", "reboot", "refresh_content", "screenshot"]
SCREENSHOTS = "/api/devices/screenshots"


def commands_url(uid: str) -> str:
    return f"/api/admin/devices/{uid}/commands"


def ask(client, uid, kind, token, **params):
    return client.post(commands_url(uid), json={"kind": kind, "params": params}, headers=token)


@pytest.fixture
def operator(app):
    return bearer(service_token("operate", "read", name="ops-bot"))


@pytest.fixture
def kiosk(make_device):
    return make_device("kiosk-1")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_delivered_once_then_acknowledged(unlimited_client, operator, kiosk, kind):
    created = ask(unlimited_client, "kiosk-1", kind, operator, delay_seconds=3)
    assert created.status_code == 201
    assert (created.json["state"], created.json["kind"]) == ("pending", kind)
    assert created.json["requested_by"] == "token:ops-bot"

    reply = beat(unlimited_client, kiosk.token).json
    assert HeartbeatResponse.model_validate(reply).model_dump(mode="json") == reply
    [command] = reply["commands"]
    assert (command["id"], command["kind"], command["params"]) == (
        created.json["id"],
        kind,
        {"delay_seconds": 3},
    )
    assert reply["should_reconnect"] is (kind == "reconnect")
    assert beat(unlimited_client, kiosk.token).json["commands"] == []

    acked = beat(unlimited_client, kiosk.token, acks=[{"id": command["id"], "result": "ok"}])
    assert acked.status_code == 200
    [listed] = unlimited_client.get(commands_url("kiosk-1"), headers=operator).json["items"]
    assert (listed["state"], listed["result"]) == ("ok", "ok")
    assert listed["delivered_at"] and listed["acknowledged_at"]
    assert [kind for kind in event_kinds("kiosk-1") if kind.startswith("command_")] == [
        "command_requested",
        "command_delivered",
        "command_acknowledged",
    ]


def test_a_failure_keeps_the_devices_message(unlimited_client, operator, kiosk):
    command_id = ask(unlimited_client, "kiosk-1", "restart_app", operator).json["id"]
    beat(unlimited_client, kiosk.token)
    ack = {"id": command_id, "result": "failed", "message": "player is locked"}
    beat(unlimited_client, kiosk.token, acks=[ack])
    [listed] = unlimited_client.get(commands_url("kiosk-1"), headers=operator).json["items"]
    assert (listed["state"], listed["message"]) == ("failed", "player is locked")


def test_the_request_and_its_actor_are_in_the_events_log(client, operator, kiosk):
    ask(client, "kiosk-1", "reboot", operator)
    event = db.session.scalars(
        select(DeviceEvent).where(DeviceEvent.kind == "command_requested")
    ).one()
    assert (event.actor, event.source, event.reason) == (
        "token:ops-bot",
        "operator",
        "reboot requested",
    )


def test_a_newer_request_replaces_a_pending_one_and_says_so(unlimited_client, operator, kiosk):
    first = ask(unlimited_client, "kiosk-1", "reboot", operator).json
    second = ask(unlimited_client, "kiosk-1", "reboot", operator, delay_seconds=60).json
    assert second["replaced_id"] == first["id"]
    [delivered] = beat(unlimited_client, kiosk.token).json["commands"]
    assert delivered["id"] == second["id"]
    states = [
        c["state"]
        for c in unlimited_client.get(commands_url("kiosk-1"), headers=operator).json["items"]
    ]
    assert states == ["delivered", "replaced"]


@pytest.mark.parametrize("foreign", [False, True])
def test_an_ack_of_an_unknown_or_foreign_command_is_refused_and_changes_nothing(
    unlimited_client, operator, make_device, foreign
):
    mine, other = make_device("kiosk-1"), make_device("kiosk-2")
    theirs = ask(unlimited_client, "kiosk-2", "reboot", operator).json["id"]
    beat(unlimited_client, other.token)
    before = device_row("kiosk-1").last_heartbeat_at
    bad_id = theirs if foreign else theirs + 1000
    refused = beat(unlimited_client, mine.token, acks=[{"id": bad_id, "result": "ok"}])
    assert refused.status_code == 422
    assert refused.json["error"]["details"]["unknown_ids"] == [bad_id]
    assert device_row("kiosk-1").last_heartbeat_at == before
    states = db.session.scalars(select(DeviceCommand.state)).all()
    assert states == ["delivered"]


def test_an_ack_of_a_command_never_delivered_is_refused(unlimited_client, operator, kiosk):
    pending = ask(unlimited_client, "kiosk-1", "reboot", operator).json["id"]
    refused = beat(unlimited_client, kiosk.token, acks=[{"id": pending, "result": "ok"}])
    assert refused.status_code == 422
    assert db.session.get(DeviceCommand, pending).state == "pending"


@pytest.mark.parametrize(
    "ack", [{"id": 1, "result": "done"}, {"id": 0, "result": "ok"}, {"result": "ok"}, "ok"]
)
def test_a_malformed_ack_is_refused_by_field(client, kiosk, ack):
    refused = beat(client, kiosk.token, acks=[ack])
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "invalid_field"


def test_a_repeated_ack_is_harmless(unlimited_client, operator, kiosk):
    command_id = ask(unlimited_client, "kiosk-1", "refresh_content", operator).json["id"]
    beat(unlimited_client, kiosk.token)
    for result in ("ok", "failed"):
        reply = beat(unlimited_client, kiosk.token, acks=[{"id": command_id, "result": result}])
        assert reply.status_code == 200
    assert db.session.get(DeviceCommand, command_id).state == "ok"


def test_an_old_client_without_acks_keeps_working(unlimited_client, operator, kiosk):
    ask(unlimited_client, "kiosk-1", "reconnect", operator, delay_seconds=7)
    reply = beat(unlimited_client, kiosk.token, battery_level=50).json
    assert (reply["should_reconnect"], reply["reconnect_delay_seconds"]) == (True, 7)
    again = beat(unlimited_client, kiosk.token).json
    assert (again["should_reconnect"], again["commands"]) == (False, [])
    # Nothing pending any more: the one-statement heartbeat takes it again.
    assert device_row("kiosk-1").commands_pending is False


def test_a_pending_command_expires_and_a_delivered_one_goes_unacknowledged(
    unlimited_client, operator, make_device
):
    quiet, silent = make_device("kiosk-1"), make_device("kiosk-2")
    ask(unlimited_client, "kiosk-1", "reboot", operator)
    ask(unlimited_client, "kiosk-2", "screenshot", operator)
    beat(unlimited_client, silent.token)
    assert quiet.token  # kiosk-1 never beats
    report = enforce_timeouts(utcnow() + timedelta(seconds=601))
    assert report.commands_settled == 2
    by_device = {
        uid: unlimited_client.get(commands_url(uid), headers=operator).json["items"][0]["state"]
        for uid in ("kiosk-1", "kiosk-2")
    }
    assert by_device == {"kiosk-1": "expired", "kiosk-2": "unacknowledged"}
    assert "command_expired" in event_kinds("kiosk-1")
    assert "command_unacknowledged" in event_kinds("kiosk-2")


def test_an_expired_command_is_never_delivered_late(app, operator, kiosk, client):
    configure(app, COMMAND_TTL_SECONDS=1)
    ask(client, "kiosk-1", "reboot", operator)
    db.session.execute(
        DeviceCommand.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert beat(client, kiosk.token).json["commands"] == []
    assert db.session.scalars(select(DeviceCommand.state)).all() == ["expired"]


def test_a_kind_the_fleet_does_not_accept_is_refused(app, client, operator, kiosk):
    configure(app, COMMAND_KINDS=("reconnect", "screenshot"))
    refused = ask(client, "kiosk-1", "reboot", operator)
    assert refused.status_code == 422
    assert refused.json["error"]["details"]["field"] == "kind"
    assert db.session.scalar(select(func.count()).select_from(DeviceCommand)) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "selfdestruct"},
        {"kind": "reboot", "params": {"delay_seconds": -1}},
        {"kind": "reboot", "params": {"delay_seconds": "soon"}},
        {"kind": "reboot", "params": {"colour": 3}},
        {"params": {}},
    ],
)
def test_a_bad_request_is_refused_and_changes_nothing(client, operator, kiosk, body):
    refused = client.post(commands_url("kiosk-1"), json=body, headers=operator)
    assert refused.status_code == 422
    assert set(refused.json["error"]) >= {"code", "message"}
    assert db.session.scalar(select(func.count()).select_from(DeviceCommand)) == 0
    assert device_row("kiosk-1").commands_pending is False


def test_a_read_token_may_list_but_not_command(client, kiosk):
    reader = bearer(service_token("read"))
    assert ask(client, "kiosk-1", "reboot", reader).status_code == 403
    assert client.get(commands_url("kiosk-1"), headers=reader).json == {"items": []}


def test_an_unknown_device_is_a_404(client, operator):
    assert ask(client, "nobody", "reboot", operator).status_code == 404
    assert client.get(commands_url("nobody"), headers=operator).status_code == 404


def test_the_openapi_document_describes_commands(client):
    paths = client.get("/api/openapi.json").json["paths"]
    assert {"post", "get"} <= set(paths["/api/admin/devices/{uid}/commands"])
    assert "post" in paths["/api/devices/screenshots"]


# --- screenshots -----------------------------------------------------------------


def upload(client, token, data, command_id=None, content_type="image/png"):
    url = SCREENSHOTS if command_id is None else f"{SCREENSHOTS}?command_id={command_id}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    return client.post(url, data=data, headers=headers)


def test_a_screenshot_is_stored_for_its_command(unlimited_client, operator, kiosk):
    command_id = ask(unlimited_client, "kiosk-1", "screenshot", operator).json["id"]
    beat(unlimited_client, kiosk.token)
    stored = upload(unlimited_client, kiosk.token, tiny_png(), command_id)
    assert stored.status_code == 201
    assert stored.json["media_type"] == "image/png"
    shot = db.session.scalars(select(Screenshot)).one()
    assert (shot.data, shot.command_id) == (tiny_png(), command_id)
    assert "screenshot_uploaded" in event_kinds("kiosk-1")


def test_a_jpeg_is_taken_too(client, kiosk):
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x01" * 200 + b"\xff\xd9"
    assert upload(client, kiosk.token, jpeg, content_type="image/jpeg").json["media_type"] == (
        "image/jpeg"
    )


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a" + b"\x00" * 50, b"<svg></svg>", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40],
)
def test_anything_but_a_whole_png_or_jpeg_is_refused_whatever_its_content_type(client, kiosk, data):
    refused = upload(client, kiosk.token, data, content_type="image/png")
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "invalid_input"
    assert db.session.scalar(select(func.count()).select_from(Screenshot)) == 0


def test_a_screenshot_over_the_cap_is_refused(app, client, kiosk):
    configure(app, SCREENSHOT_MAX_BYTES=2048)
    big = tiny_png(400, 400, (1, 2, 3))
    padded = big[:-12] + b"\x00" * 4096 + big[-12:]
    assert upload(client, kiosk.token, padded).status_code == 413
    assert db.session.scalar(select(func.count()).select_from(Screenshot)) == 0


def test_a_screenshot_takes_more_than_a_json_body(app, client, kiosk):
    configure(app, MAX_CONTENT_LENGTH=1024, SCREENSHOT_MAX_BYTES=200_000)
    png = tiny_png()
    padded = png[:-12] + b"\x00" * 50_000 + png[-12:]
    assert upload(client, kiosk.token, padded).status_code == 201


def test_a_screenshot_needs_a_device_token(client, kiosk):
    assert upload(client, "not-a-token", tiny_png()).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(Screenshot)) == 0


def test_a_screenshot_for_another_devices_command_is_refused(
    unlimited_client, operator, make_device
):
    mine, other = make_device("kiosk-1"), make_device("kiosk-2")
    theirs = ask(unlimited_client, "kiosk-2", "screenshot", operator).json["id"]
    beat(unlimited_client, other.token)
    for command_id in (theirs, "abc"):
        assert upload(unlimited_client, mine.token, tiny_png(), command_id).status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Screenshot)) == 0


# --- the command line ------------------------------------------------------------


def test_the_cli_asks_for_a_command(runner, kiosk):
    result = runner.invoke(
        args=["devices", "command", "kiosk-1", "reboot", "--param", "delay_seconds=30"]
    )
    assert result.exit_code == 0, result.output
    command = db.session.scalars(select(DeviceCommand)).one()
    assert (command.kind, command.params, command.requested_by) == (
        "reboot",
        {"delay_seconds": 30},
        "cli",
    )
    assert f"Command {command.id} (reboot) for kiosk-1 is pending." in result.output


@pytest.mark.parametrize(
    "args",
    [["kiosk-1", "explode"], ["kiosk-1", "reboot", "--param", "delay"], ["nobody", "reboot"]],
)
def test_the_cli_refuses_a_bad_command(runner, kiosk, args):
    result = runner.invoke(args=["devices", "command", *args])
    assert result.exit_code != 0
    assert db.session.scalar(select(func.count()).select_from(DeviceCommand)) == 0
