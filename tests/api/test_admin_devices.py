"""The integration API: list and inspect devices (scope read), ask for a reconnect (operate)."""

from datetime import timedelta

import pytest

from fleet.services import heartbeats, reconnects
from fleet.services.pings import PingResult, apply_ping
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.api.admin_support import bearer, service_token
from tests.helpers import device_row, event_kinds, snapshot_of

DEVICES = "/api/admin/devices"


@pytest.fixture
def reader():
    return bearer(service_token("read"))


@pytest.fixture
def operator():
    return bearer(service_token("operate"))


def uids(response):
    return [item["uid"] for item in response.json["items"]]


def test_it_lists_devices_with_a_total_and_pages(client, make_device, reader):
    for n in range(5):
        make_device(f"kiosk-{n}", site="Berlin")
    query = {"sort": "uid", "per_page": 2, "page": 2}
    response = client.get(DEVICES, query_string=query, headers=reader)
    assert response.status_code == 200
    assert uids(response) == ["kiosk-2", "kiosk-3"]
    assert {k: response.json[k] for k in ("total", "page", "per_page", "pages")} == {
        "total": 5,
        "page": 2,
        "per_page": 2,
        "pages": 3,
    }


def test_it_filters_like_the_dashboard(client, make_device, reader):
    make_device("lobby-1", site="Berlin")
    make_device("lobby-2", site="Paris", status="disconnected")
    make_device("cafe-1", site="Berlin")

    def listed(**query):
        return uids(client.get(DEVICES, query_string={"sort": "uid", **query}, headers=reader))

    assert listed(site="Berlin") == ["cafe-1", "lobby-1"]
    assert listed(status="disconnected") == ["lobby-2"]
    assert listed(q="CAFE") == ["cafe-1"]
    assert listed(flapping="false") == ["cafe-1", "lobby-1", "lobby-2"]
    assert listed(flapping="true") == []


def test_it_filters_flapping_devices(client, make_device, reader):
    start = utcnow() - timedelta(minutes=30)
    token = make_device("flappy", now=start).token
    make_device("steady")
    now = start
    for n in range(4):
        now += timedelta(seconds=100)
        if n % 2 == 0:
            enforce_timeouts(now)
        else:
            snapshot = snapshot_of(token)
            heartbeats.record_heartbeat(snapshot, heartbeats.Telemetry(), now)
    response = client.get(DEVICES, query_string={"flapping": "true"}, headers=reader)
    assert uids(response) == ["flappy"]
    assert (response.json["items"][0]["flapping"], response.json["items"][0]["flap_count"]) == (
        True,
        4,
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "asleep"}, "status"),
        ({"flapping": "maybe"}, "flapping"),
        ({"page": "0"}, "page"),
        ({"per_page": "501"}, "per_page"),
        ({"sort": "random"}, "sort"),
    ],
)
def test_it_names_a_bad_filter(client, reader, query, field):
    response = client.get(DEVICES, query_string=query, headers=reader)
    assert response.status_code == 422
    assert list(response.json["error"]["details"]["fields"]) == [field]


def test_it_shows_one_device_with_everything_staff_see(client, make_device, reader):
    long_ago = utcnow() - timedelta(seconds=120)
    make_device(
        "kiosk-1",
        now=long_ago,
        site="Berlin",
        battery_level=55.0,
        wifi_strength=-70,
        app_version="2.1",
        last_address="192.0.2.4",
    )
    apply_ping(PingResult("kiosk-1", False, None), utcnow())
    reconnects.request_reconnect("kiosk-1", "ops@example.com", utcnow(), delay_seconds=3)
    response = client.get(f"{DEVICES}/kiosk-1", headers=reader)
    assert response.status_code == 200
    body = response.json
    assert (body["status"], body["status_source"], body["status_reason"]) == (
        "temporarily_offline",
        "external_service",
        "unreachable by external ping",
    )
    assert body["heartbeat_age_seconds"] >= 120
    assert body["telemetry"]["battery_level"] == 55.0
    assert body["telemetry"]["app_version"] == "2.1"
    assert (body["ping"]["diagnosis"], body["ping"]["reachable"]) == ("unreachable", False)
    assert (body["reconnect"]["state"], body["reconnect"]["requested_by"]) == (
        "pending",
        "ops@example.com",
    )
    assert (body["flapping"], body["flap_count"], body["last_address"]) == (False, 1, "192.0.2.4")


def test_it_answers_404_for_an_unknown_device(client, reader):
    response = client.get(f"{DEVICES}/nobody", headers=reader)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "device_not_found"


def test_it_requests_a_reconnect_like_the_dashboard_button(client, make_device, operator):
    token = make_device("kiosk-1").token
    response = client.post(f"{DEVICES}/kiosk-1/reconnect", json={}, headers=operator)
    assert response.status_code == 202
    reconnect = response.json["reconnect"]
    assert (reconnect["state"], reconnect["requested_by"], reconnect["delay_seconds"]) == (
        "pending",
        "token:token-operate",
        5,
    )
    assert event_kinds("kiosk-1")[-1] == "reconnect_requested"
    answer = client.post("/api/devices/heartbeat", headers=bearer(token)).json
    assert (answer["should_reconnect"], answer["reconnect_delay_seconds"]) == (True, 5)


def test_it_takes_a_reconnect_delay(client, make_device, operator):
    make_device("kiosk-1")
    response = client.post(
        f"{DEVICES}/kiosk-1/reconnect", json={"delay_seconds": 20}, headers=operator
    )
    assert response.json["reconnect"]["delay_seconds"] == 20
    assert device_row("kiosk-1").reconnect_delay_seconds == 20


@pytest.mark.parametrize("delay", [-1, 3601, "soon", 2.5])
def test_it_names_a_bad_delay(client, make_device, operator, delay):
    make_device("kiosk-1")
    response = client.post(
        f"{DEVICES}/kiosk-1/reconnect", json={"delay_seconds": delay}, headers=operator
    )
    assert response.status_code == 422
    assert device_row("kiosk-1").reconnect_state is None


def test_a_reconnect_for_an_unknown_device_is_404(client, operator):
    response = client.post(f"{DEVICES}/nobody/reconnect", json={}, headers=operator)
    assert response.status_code == 404
