"""Bulk commands on the fleet page: offered on a filtered view with its count, confirmed on the
page, run a chunk at a time (in the background when large), each request logged with its actor."""

from __future__ import annotations

from sqlalchemy import select

from fleet.extensions import db
from fleet.models import BulkAction, DeviceCommand, DeviceEvent
from tests.helpers import configure, finished_bulk_line


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def depot(make_device, count: int) -> None:
    for n in range(count):
        make_device(f"kiosk-{n}", site="Depot")
    make_device("elsewhere", site="Lobby")


def send(client, token: str, query: str, **form: str):
    return client.post(f"/commands/bulk?{query}", data=form, headers={"X-CSRFToken": token})


def test_it_is_offered_to_operators_on_a_filtered_view_with_the_count(client, login, make_device):
    login("operator")
    depot(make_device, 3)
    assert "Send a command to all" not in html(client.get("/"))
    page = html(client.get("/?site=Depot"))
    assert "Send a command to all 3 matching…" in page
    assert "Yes, send to 3" in page
    assert 'hx-post="/commands/bulk?site=Depot"' in page


def test_viewers_are_not_offered_it_and_are_refused(client, login, make_device):
    token = login("viewer")
    depot(make_device, 2)
    assert "Send a command to all" not in html(client.get("/?site=Depot"))
    assert send(client, token, "site=Depot", kind="reboot").status_code == 403
    assert db.session.scalars(select(DeviceCommand)).all() == []


def test_it_sends_the_command_to_every_matching_device_with_the_actor(client, login, make_device):
    token = login("operator")
    depot(make_device, 3)
    answer = html(send(client, token, "site=Depot", kind="restart_app", delay_seconds="5"))
    assert "Asked 3 devices to restart their app" in answer
    commands = db.session.scalars(select(DeviceCommand)).all()
    assert {(c.kind, c.requested_by) for c in commands} == {("restart_app", "operator@example.com")}
    assert min(c.params["delay_seconds"] for c in commands) == 5
    actors = db.session.scalars(
        select(DeviceEvent.actor).where(DeviceEvent.kind == "command_requested")
    ).all()
    assert actors == ["operator@example.com"] * 3


def test_a_refused_bulk_request_says_why_and_sends_nothing(client, login, make_device):
    token = login("operator")
    depot(make_device, 2)
    for query, form in (
        ("", {"kind": "reboot"}),  # no filter: the whole fleet
        ("site=Depot", {"kind": "explode"}),
        ("site=Depot", {"kind": "reboot", "delay_seconds": "soon"}),
    ):
        answer = html(send(client, token, query, **form))
        assert 'role="alert"' in answer, query
    assert db.session.scalars(select(BulkAction)).all() == []
    assert db.session.scalars(select(DeviceCommand)).all() == []


def test_a_bulk_command_without_the_csrf_token_is_refused(client, login, make_device):
    login("operator")
    depot(make_device, 1)
    assert client.post("/commands/bulk?site=Depot", data={"kind": "reboot"}).status_code == 400


def test_a_large_bulk_command_runs_in_the_background_and_shows_its_progress(
    app, client, login, make_device, backend
):
    token = login("operator")
    configure(app, BULK_INLINE_MAX=3, BULK_CHUNK_SIZE=2)
    depot(make_device, 7)
    page = html(send(client, token, "site=Depot", kind="screenshot"))
    assert "Asking 7 devices to send a screenshot, a chunk at a time" in page
    answer = finished_bulk_line(client, page, backend)
    assert "Asked 7 devices to send a screenshot" in answer
    db.session.rollback()
    assert len(db.session.scalars(select(DeviceCommand)).all()) == 7
