"""The fleet grid's command cell: each row's latest command and its state, the operators' menu,
and the poll that redraws a row when its command moves on."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from fleet.extensions import db
from fleet.models import DeviceCommand, DeviceEvent
from fleet.services import commands
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import beat, configure, disable_rate_limits


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(DeviceCommand))


def command_cell(page: str, device_id: int) -> str:
    row = re.search(rf'<tr id="device-{device_id}".*?</tr>', page, re.DOTALL)
    assert row, page
    cell = re.search(r'<td class="c-command">.*?</td>\s*<td class="c-num', row.group(0), re.DOTALL)
    return cell.group(0)


def poll(client, device_id: int, since) -> str:
    return html(client.get(f"/poll?since={quote(since.isoformat())}&shown={device_id}"))


def post_command(client, token: str, uid: str, **form: str):
    return client.post(f"/devices/{uid}/commands/row", data=form, headers={"X-CSRFToken": token})


def test_operators_get_a_command_menu_on_every_row_with_reboot_confirmed_on_the_page(
    client, login, make_device
):
    login("operator")
    alpha, bravo = make_device("alpha"), make_device("bravo")
    page = html(client.get("/"))
    for device in (alpha, bravo):
        cell = command_cell(page, device.id)
        for label in ("Restart app", "Refresh content", "Screenshot", "Yes, reboot"):
            assert f">{label}</button>" in cell
        # Reboot is only sent from inside its confirmation, which names the device.
        assert f"Reboot {device.uid}? It goes offline" in cell
    assert page.count('class="row-commands"') == 2


def test_viewers_see_the_latest_command_but_no_menu_and_are_refused(client, login, make_device):
    token = login("viewer")
    alpha = make_device("alpha")
    commands.request_command("alpha", "refresh_content", {}, "ops@example.com", utcnow())
    cell = command_cell(html(client.get("/")), alpha.id)
    assert "refresh content · pending" in cell
    assert "row-commands" not in cell and "<button" not in cell
    assert post_command(client, token, "alpha", kind="reboot").status_code == 403
    assert count() == 1


def test_an_operator_asks_from_a_row_and_gets_the_cell_back_pending(client, login, make_device):
    token = login("operator")
    make_device("alpha")
    response = post_command(client, token, "alpha", kind="screenshot")
    cell = html(response)
    assert cell.lstrip().startswith('<td class="c-command">')
    assert "screenshot · pending" in cell
    command = db.session.scalars(select(DeviceCommand)).one()
    assert (command.kind, command.requested_by) == ("screenshot", "operator@example.com")
    actor = db.session.scalar(
        select(DeviceEvent.actor).where(DeviceEvent.kind == "command_requested")
    )
    assert actor == "operator@example.com"


@pytest.mark.parametrize(
    "form", [{"kind": "explode"}, {"kind": "reboot", "delay_seconds": "soon"}, {}]
)
def test_a_refused_row_request_says_why_in_the_cell_and_sends_nothing(
    client, login, make_device, form
):
    token = login("operator")
    make_device("alpha")
    commands.request_command("alpha", "refresh_content", {}, "ops@example.com", utcnow())
    cell = html(post_command(client, token, "alpha", **form))
    assert 'role="alert"' in cell
    assert "refresh content · pending" in cell  # the latest command still shows
    assert count() == 1


def test_a_row_request_without_the_csrf_token_is_refused(client, login, make_device):
    login("operator")
    make_device("alpha")
    assert client.post("/devices/alpha/commands/row", data={"kind": "reboot"}).status_code == 400
    assert count() == 0


def test_a_row_request_for_an_unknown_device_is_not_found(client, login):
    token = login("operator")
    assert post_command(client, token, "nobody", kind="reboot").status_code == 404


def test_the_menu_offers_only_the_kinds_the_fleet_accepts(app, client, login, make_device):
    login("operator")
    configure(app, COMMAND_KINDS=("reconnect", "screenshot"))
    alpha = make_device("alpha")
    cell = command_cell(html(client.get("/")), alpha.id)
    assert ">Screenshot</button>" in cell
    assert "Restart app" not in cell and "reboot" not in cell.lower()


def test_the_page_reads_every_rows_latest_command_at_once(
    app, client, login, make_device, monkeypatch
):
    login("viewer")
    for uid in ("alpha", "bravo", "charlie"):
        make_device(uid)
        commands.request_command(uid, "reboot", {}, "ops", utcnow())
    commands.request_command("bravo", "screenshot", {}, "ops", utcnow())

    def not_per_row(_device_id):
        raise AssertionError("a row read its latest command on its own")

    monkeypatch.setitem(app.jinja_env.globals, "latest_command", not_per_row)
    page = html(client.get("/"))
    assert page.count("reboot · pending") == 2
    assert page.count("screenshot · pending") == 1


def test_the_poll_redraws_a_row_as_its_command_is_delivered_and_acknowledged(
    app, client, login, make_device
):
    disable_rate_limits(app)  # two heartbeats in a row
    login("viewer")
    alpha = make_device("alpha", now=utcnow() - timedelta(minutes=5))
    commands.request_command("alpha", "reboot", {}, "ops", utcnow())
    before = utcnow() - timedelta(seconds=1)
    [command] = beat(client, alpha.token).json["commands"]
    assert "reboot · delivered" in command_cell(poll(client, alpha.id, before), alpha.id)

    before = utcnow() - timedelta(seconds=1)
    ack = {"id": command["id"], "result": "failed", "message": "busy"}
    assert beat(client, alpha.token, acks=[ack]).status_code == 200
    assert "reboot · failed" in command_cell(poll(client, alpha.id, before), alpha.id)


def test_the_poll_redraws_a_row_whose_command_the_sweep_settles(client, login, make_device):
    login("viewer")
    now = utcnow()
    alpha = make_device("alpha", now=now)
    commands.request_command("alpha", "restart_app", {}, "ops", now - timedelta(hours=1))
    before = now - timedelta(seconds=1)  # from the test's clock: a slow setup must not pass it
    enforce_timeouts(now)
    assert "restart app · expired" in command_cell(poll(client, alpha.id, before), alpha.id)
