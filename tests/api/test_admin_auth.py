"""Who may call the admin API: scopes, revocation, and the two kinds of token kept apart."""

import pytest

from fleet.services.service_tokens import revoke_token
from fleet.timeutil import utcnow
from tests.api.admin_support import bearer, service_token

ENDPOINTS = [
    ("get", "/api/admin/external/devices-needing-ping", "ping"),
    ("post", "/api/admin/external/ping", "ping"),
    ("post", "/api/admin/external/ping-batch", "ping"),
    ("get", "/api/admin/devices", "read"),
    ("get", "/api/admin/devices/kiosk-1", "read"),
    ("post", "/api/admin/devices/kiosk-1/reconnect", "operate"),
]
ALL_SCOPES = {"ping", "read", "operate"}


def call(client, method, url, headers=None):
    return getattr(client, method)(
        url, headers=headers or {}, json={} if method == "post" else None
    )


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS)
def test_it_refuses_a_missing_token(client, method, url, scope):
    response = call(client, method, url)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS)
def test_it_refuses_an_unknown_token(client, method, url, scope):
    response = call(client, method, url, bearer("pbs_not-a-real-token"))
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS)
def test_it_refuses_a_revoked_token(client, method, url, scope):
    token = service_token(*ALL_SCOPES, name="everything")
    revoke_token("everything", utcnow())
    assert call(client, method, url, bearer(token)).status_code == 401


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS)
def test_it_forbids_a_token_without_the_scope(client, method, url, scope):
    token = service_token(*(ALL_SCOPES - {scope}))
    response = call(client, method, url, bearer(token))
    assert response.status_code == 403
    error = response.json["error"]
    assert (error["code"], error["details"]["required_scope"]) == ("forbidden", scope)


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS)
def test_it_admits_a_token_with_the_scope(client, make_device, method, url, scope):
    make_device("kiosk-1")
    token = service_token(scope)
    assert call(client, method, url, bearer(token)).status_code in {200, 202, 422}


@pytest.mark.parametrize(("method", "url", "scope"), ENDPOINTS)
def test_a_device_token_never_works_on_the_admin_api(client, make_device, method, url, scope):
    device = make_device("kiosk-1")
    assert call(client, method, url, bearer(device.token)).status_code == 401


def test_a_service_token_never_works_as_a_device(client):
    token = service_token(*ALL_SCOPES)
    response = client.post("/api/devices/heartbeat", json={}, headers=bearer(token))
    assert response.status_code == 401


def test_one_token_may_hold_several_scopes(client, make_device):
    make_device("kiosk-1")
    token = service_token("ping", "read")
    assert client.get("/api/admin/devices", headers=bearer(token)).status_code == 200
    url = "/api/admin/external/devices-needing-ping"
    assert client.get(url, headers=bearer(token)).status_code == 200


def test_it_limits_failed_credentials_per_address(make_app):
    app = make_app(BAD_TOKEN_MAX_PER_MINUTE=3)
    with app.app_context():
        client = app.test_client()
        good = service_token("read")
        codes = [
            client.get("/api/admin/devices", headers=bearer("pbs_wrong")).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        assert client.get("/api/admin/devices", headers=bearer(good)).status_code == 200
