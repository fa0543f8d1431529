"""Bulk commands for scripts: POST /api/admin/commands with a filter, its progress, and the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fleet.extensions import db
from fleet.models import BulkAction, DeviceCommand, DeviceEvent
from tests.api.admin_support import bearer, service_token

BULK = "/api/admin/commands"


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def lobby(make_device):
    for n in range(3):
        make_device(f"kiosk-{n}", site="Lobby")
    make_device("elsewhere", site="Atrium")


@pytest.fixture
def operator(app):
    return bearer(service_token("operate", "read", name="ops-bot"))


def test_it_sends_a_command_to_every_device_the_filter_matches(client, operator, lobby):
    body = {"kind": "refresh_content", "params": {"delay_seconds": 5}, "filter": {"site": "Lobby"}}
    response = client.post(BULK, json=body, headers=operator)
    assert response.status_code == 202, response.json
    run = response.json
    assert (run["kind"], run["state"], run["total"]) == ("refresh_content", "done", 3)
    assert run["done"] == 3
    assert run["requested_by"] == "token:ops-bot"
    assert count(DeviceCommand) == 3
    actors = db.session.scalars(
        select(DeviceEvent.actor).where(DeviceEvent.kind == "command_requested")
    ).all()
    assert actors == ["token:ops-bot"] * 3
    progress = client.get(f"{BULK}/{run['id']}", headers=operator)
    assert progress.status_code == 200
    assert progress.json == run


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "reboot", "filter": {}}, "filter"),
        ({"kind": "reboot"}, "filter"),
        ({"kind": "explode", "filter": {"site": "Lobby"}}, "kind"),
        ({"kind": "reboot", "filter": {"status": "asleep"}}, "filter.status"),
        ({"kind": "reboot", "params": {"delay_seconds": 9999}, "filter": {"site": "Lobby"}}, None),
        ({"kind": "reboot", "filter": {"site": "Lobby", "flapping": "often"}}, "flapping"),
    ],
)
def test_a_bad_bulk_request_gets_the_error_shape_and_changes_nothing(
    client, operator, lobby, body, field
):
    response = client.post(BULK, json=body, headers=operator)
    assert response.status_code in (400, 422), response.json
    assert set(response.json) == {"error"}
    if field:
        assert field in str(response.json["error"])
    assert count(BulkAction) == 0 and count(DeviceCommand) == 0


def test_a_bulk_command_needs_the_operate_scope(client, lobby):
    reader = bearer(service_token("read"))
    body = {"kind": "reboot", "filter": {"site": "Lobby"}}
    assert client.post(BULK, json=body, headers=reader).status_code == 403
    assert client.post(BULK, json=body).status_code == 401
    assert count(DeviceCommand) == 0


@pytest.mark.parametrize("action_id", [999, 0, 2**31, 2**70])
def test_an_unknown_bulk_run_is_not_found(client, operator, action_id):
    response = client.get(f"{BULK}/{action_id}", headers=operator)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_the_openapi_document_describes_bulk_commands(client):
    paths = client.get("/api/openapi.json").json["paths"]
    assert "post" in paths["/api/admin/commands"]
    assert "get" in paths["/api/admin/commands/{action_id}"]


# --- the command line ------------------------------------------------------------


def test_the_cli_sends_a_command_to_a_filtered_fleet(runner, lobby):
    result = runner.invoke(
        args=["devices", "command-all", "reboot", "--site", "Lobby", "--param", "delay_seconds=3"]
    )
    assert result.exit_code == 0, result.output
    assert "asked 3 device(s) for reboot" in result.output
    by = db.session.scalars(select(DeviceCommand.requested_by)).all()
    assert by == ["cli"] * 3


@pytest.mark.parametrize(
    "args", [["reboot"], ["explode", "--site", "Lobby"], ["reboot", "--status", "asleep"]]
)
def test_the_cli_refuses_a_bad_bulk_command(runner, lobby, args):
    result = runner.invoke(args=["devices", "command-all", *args])
    assert result.exit_code != 0
    assert count(DeviceCommand) == 0
