"""The channels' admin API: masked on the way out, scope `admin` to change them."""

from __future__ import annotations

from tests.api.admin_support import bearer, service_token

SECRET_URL = "jsons://bot:hunter2@hooks.example.com/pulseboard"


def test_an_admin_token_adds_a_channel_and_never_gets_the_url_back(client):
    response = client.post(
        "/api/admin/channels",
        json={"name": "ops", "url": SECRET_URL},
        headers=bearer(service_token("admin")),
    )
    assert response.status_code == 201, response.json
    assert "hunter2" not in response.json["url"]
    listed = client.get("/api/admin/channels", headers=bearer(service_token("read")))
    [item] = listed.json["items"]
    assert item["name"] == "ops" and "hunter2" not in item["url"] and not item["failing"]


def test_a_webhook_gets_a_signing_secret_shown_once(client):
    response = client.post(
        "/api/admin/channels",
        json={"name": "hook", "url": "webhooks://hooks.example.com/in"},
        headers=bearer(service_token("admin")),
    )
    assert response.status_code == 201 and len(response.json["signing_secret"]) > 30
    listed = client.get("/api/admin/channels", headers=bearer(service_token("read")))
    assert "signing_secret" not in listed.json["items"][0]


def test_a_refused_url_is_a_422_and_adds_nothing(client):
    token = bearer(service_token("admin"))
    response = client.post(
        "/api/admin/channels", json={"name": "x", "url": "file:///etc/passwd"}, headers=token
    )
    assert response.status_code == 422 and response.json["error"]["code"] == "invalid_input"
    listed = client.get("/api/admin/channels", headers=bearer(service_token("read")))
    assert listed.json["items"] == []


def test_changing_channels_needs_the_admin_scope(client):
    token = bearer(service_token("read", "operate"))
    response = client.post(
        "/api/admin/channels", json={"name": "x", "url": SECRET_URL}, headers=token
    )
    assert response.status_code == 403
    assert client.delete("/api/admin/channels/x", headers=token).status_code == 403


def test_an_admin_token_removes_a_channel(client):
    token = bearer(service_token("admin"))
    client.post("/api/admin/channels", json={"name": "ops", "url": SECRET_URL}, headers=token)
    assert client.delete("/api/admin/channels/ops", headers=token).status_code == 204
    assert client.delete("/api/admin/channels/ops", headers=token).status_code == 404
