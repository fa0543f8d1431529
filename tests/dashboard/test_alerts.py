"""The Alerts page, Acknowledge for operators, the channels page for admins, the grid's badge."""

from __future__ import annotations

import pytest

from fleet.services.alerts import channels, outbox, ruleset
from fleet.services.alerts.ruleset import RuleSpec
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow

SECRET_URL = "jsons://bot:hunter2@hooks.example.com/pulseboard"


@pytest.fixture
def incident(app, make_device, receiver):
    from datetime import timedelta

    start = utcnow() - timedelta(seconds=400)
    make_device("kiosk-1", now=start, site="lobby")
    channels.add_channel("hook", receiver.url(), "admin", start)
    ruleset.add_rule(RuleSpec(name="down", kind="disconnected", channels=("hook",)), "admin", start)
    enforce_timeouts(utcnow())
    outbox.deliver_due(utcnow() + timedelta(seconds=10))
    return receiver


def page(client, path="/alerts"):
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_the_alerts_page_lists_the_open_incident_and_its_delivery(client, login, incident):
    login("viewer")
    html = page(client)
    assert "kiosk-1 disconnected" in html and "rule down" in html
    assert "opened → hook" in html and "<strong>sent</strong>" in html
    assert "Acknowledge" not in html  # viewers look


def test_an_operator_acknowledges_with_a_note(client, login, incident):
    token = login("operator")
    assert "Acknowledge" in page(client)
    response = client.post(
        "/alerts/incidents/1/acknowledge",
        data={"note": "technician on the way"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "acknowledged" in html and "technician on the way" in html
    log = page(client)
    assert "incident 1 acknowledged: technician on the way" in log and "operator@example.com" in log


def test_acknowledge_needs_csrf_and_the_operator_role(client, login, incident):
    token = login("viewer")
    refused = client.post("/alerts/incidents/1/acknowledge", headers={"X-CSRFToken": token})
    assert refused.status_code == 403
    no_csrf = client.post("/alerts/incidents/1/acknowledge")
    assert no_csrf.status_code == 400


def test_the_grid_shows_a_devices_open_incident(client, login, incident):
    login("viewer")
    assert "incident #1" in page(client, "/")


def test_the_channels_page_is_for_admins_and_masks_urls(client, login, app):
    channels.add_channel("ops", SECRET_URL, "admin", utcnow())
    login("operator")
    assert client.get("/alerts/channels").status_code == 403


def test_an_admin_sees_masked_urls_and_adds_a_channel(client, login):
    token = login("admin")
    response = client.post(
        "/alerts/channels", data={"name": "ops", "url": SECRET_URL, "csrf_token": token}
    )
    assert response.status_code == 302
    html = page(client, "/alerts/channels")
    assert "ops" in html and "hooks.example.com" in html and "hunter2" not in html


def test_a_refused_url_is_said_on_the_page_and_adds_nothing(client, login):
    token = login("admin")
    client.post("/alerts/channels", data={"name": "x", "url": "file:///etc", "csrf_token": token})
    html = page(client, "/alerts/channels")
    assert "not allowed" in html and "No channels yet." in html


def test_send_test_is_queued_then_reported_once_the_worker_sent_it(client, login, receiver):
    token = login("admin")
    channels.add_channel("hook", receiver.url(), "admin", utcnow())
    queued = client.post("/alerts/channels/hook/test", headers={"X-CSRFToken": token})
    assert queued.status_code == 200 and "waiting for the delivery worker" in queued.get_data(
        as_text=True
    )
    assert receiver.received == []  # never sent inside the web request
    outbox.deliver_due(utcnow())
    answer = client.get("/alerts/tests/1")
    assert answer.status_code == 286 and "Delivered." in answer.get_data(as_text=True)


def test_an_admin_removes_a_channel(client, login):
    token = login("admin")
    channels.add_channel("ops", SECRET_URL, "admin", utcnow())
    response = client.post(
        "/alerts/channels/ops/remove", headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/alerts/channels"
    assert "No channels yet." in page(client, "/alerts/channels")
