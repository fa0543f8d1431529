"""The device page's commands over HTTP: roles, CSRF, refusals, the history and the screenshot."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clients.images import tiny_png
from fleet.extensions import db
from fleet.models import DeviceCommand, DeviceEvent
from fleet.services import commands
from fleet.timeutil import utcnow


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(DeviceCommand))


def html(response) -> str:
    return response.get_data(as_text=True)


def test_an_operator_asks_for_a_command_with_a_delay(client, login, make_device):
    token = login("operator")
    make_device("alpha")
    response = client.post(
        "/devices/alpha/commands",
        data={"kind": "reboot", "delay_seconds": "45"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert "pending" in html(response) and "after 45 s" in html(response)
    command = db.session.scalars(select(DeviceCommand)).one()
    assert (command.kind, command.params, command.requested_by) == (
        "reboot",
        {"delay_seconds": 45},
        "operator@example.com",
    )
    actor = db.session.scalar(
        select(DeviceEvent.actor).where(DeviceEvent.kind == "command_requested")
    )
    assert actor == "operator@example.com"


@pytest.mark.parametrize(
    "form", [{"kind": "explode"}, {"kind": "reboot", "delay_seconds": "soon"}, {}]
)
def test_a_refused_request_says_why_and_sends_nothing(client, login, make_device, form):
    token = login("operator")
    make_device("alpha")
    response = client.post("/devices/alpha/commands", data=form, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert 'role="alert"' in html(response)
    assert count() == 0


def test_a_post_without_the_csrf_token_is_refused(client, login, make_device):
    login("operator")
    make_device("alpha")
    assert client.post("/devices/alpha/commands", data={"kind": "reboot"}).status_code == 400
    assert count() == 0


def test_a_viewer_sees_the_history_but_no_menu_and_is_refused(client, login, make_device):
    token = login("viewer")
    make_device("alpha")
    commands.request_command("alpha", "refresh_content", {}, "ops@example.com", utcnow())
    page = html(client.get("/devices/alpha"))
    assert "refresh content" in page and "command-menu" not in page
    refused = client.post(
        "/devices/alpha/commands", data={"kind": "reboot"}, headers={"X-CSRFToken": token}
    )
    assert refused.status_code == 403
    assert count() == 1


def test_the_page_shows_the_latest_screenshot_and_serves_it(client, login, make_device):
    login("viewer")
    alpha, bravo = make_device("alpha"), make_device("bravo")
    headers = {"Authorization": f"Bearer {alpha.token}", "Content-Type": "image/png"}
    shot = client.post("/api/devices/screenshots", data=tiny_png(), headers=headers).json
    panel = html(client.get("/devices/alpha/commands"))
    assert f"/devices/alpha/screenshots/{shot['id']}" in panel
    image = client.get(f"/devices/alpha/screenshots/{shot['id']}")
    assert (image.status_code, image.mimetype, image.data) == (200, "image/png", tiny_png())
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/devices/{bravo.uid}/screenshots/{shot['id']}").status_code == 404
