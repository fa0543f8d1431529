"""GET /api/admin/incidents and POST .../acknowledge: scoped, in the error shape, with delivery."""

from __future__ import annotations

import pytest

from fleet.services.alerts import channels, outbox, ruleset
from fleet.services.alerts.ruleset import RuleSpec
from fleet.services.sweep import enforce_timeouts
from tests.api.admin_support import bearer, service_token
from tests.services.alerts.conftest import T0, at


@pytest.fixture
def incident(app, make_device):
    app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = True
    make_device("kiosk-1", now=T0, site="lobby")
    channels.add_channel("ops", "json://127.0.0.1:9/none", "admin", T0)
    ruleset.add_rule(RuleSpec(name="down", kind="disconnected", channels=("ops",)), "admin", T0)
    enforce_timeouts(at(301))
    outbox.deliver_due(at(310))  # nothing listens on port 9: the message is retrying


def test_it_lists_incidents_with_devices_and_delivery_state(client, incident):
    response = client.get("/api/admin/incidents", headers=bearer(service_token("read")))
    assert response.status_code == 200
    [item] = response.json["items"]
    assert (item["rule"], item["site"], item["state"]) == ("down", "lobby", "open")
    assert item["device_uids"] == ["kiosk-1"]
    [notification] = item["notifications"]
    assert (notification["channel"], notification["kind"]) == ("ops", "opened")
    assert notification["state"] == "retrying" and notification["attempts"] == 1
    assert notification["last_error"]


def test_it_filters_by_state(client, incident):
    token = bearer(service_token("read"))
    assert client.get("/api/admin/incidents?state=resolved", headers=token).json["items"] == []
    assert len(client.get("/api/admin/incidents?state=open", headers=token).json["items"]) == 1
    bad = client.get("/api/admin/incidents?state=closed", headers=token)
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_field"


def test_an_operator_token_acknowledges_with_a_note(client, incident):
    [item] = client.get("/api/admin/incidents", headers=bearer(service_token("read"))).json["items"]
    url = f"/api/admin/incidents/{item['id']}/acknowledge"
    response = client.post(
        url,
        json={"note": "store manager called"},
        headers=bearer(service_token("operate", name="ops-bot")),
    )
    assert response.status_code == 200
    assert response.json["state"] == "acknowledged"
    assert response.json["note"] == "store manager called"
    assert "ops-bot" in response.json["acknowledged_by"]
    again = client.post(url, json={}, headers=bearer(service_token("operate", name="again")))
    assert again.status_code == 409 and again.json["error"]["code"] == "invalid_state"


def test_acknowledging_needs_the_operate_scope(client, incident):
    response = client.post(
        "/api/admin/incidents/1/acknowledge", json={}, headers=bearer(service_token("read"))
    )
    assert response.status_code == 403


@pytest.mark.parametrize("incident_id", ["999", "0", "99999999999999999999999"])
def test_an_unknown_incident_is_a_404(client, incident_id):
    response = client.post(
        f"/api/admin/incidents/{incident_id}/acknowledge",
        json={},
        headers=bearer(service_token("operate")),
    )
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_a_bad_note_changes_nothing(client, incident):
    token = bearer(service_token("operate"))
    response = client.post("/api/admin/incidents/1/acknowledge", json={"note": 5}, headers=token)
    assert response.status_code == 422
    items = client.get("/api/admin/incidents", headers=bearer(service_token("read", name="r")))
    assert items.json["items"][0]["state"] == "open"
