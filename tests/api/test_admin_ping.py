"""The ping service's side of the admin API: whom to ping, and one result at a time."""

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from fleet.timeutil import utcnow
from tests.api.admin_support import bearer, service_token
from tests.helpers import device_row, events_of

NEEDING = "/api/admin/external/devices-needing-ping"
PING = "/api/admin/external/ping"
LONG_AGO = timedelta(seconds=90)


@pytest.fixture
def pinger():
    return bearer(service_token("ping"))


def stale_device(make_device, uid="kiosk-1", **columns):
    return make_device(uid, now=utcnow() - LONG_AGO, last_address="192.0.2.10", **columns)


def test_it_lists_stale_devices_with_their_last_address(client, make_device, pinger):
    stale_device(make_device, "stale")
    make_device("fresh", last_address="192.0.2.11")
    body = client.get(NEEDING, headers=pinger).json
    assert body["next_after"] is None
    (item,) = body["items"]
    assert (item["uid"], item["address"], item["status"]) == ("stale", "192.0.2.10", "connected")
    assert item["last_heartbeat_at"].endswith("Z")
    assert (item["last_ping_reachable"], item["last_ping_checked_at"]) == (None, None)


def test_it_pages_the_list(client, make_device, pinger):
    for n in range(3):
        stale_device(make_device, f"kiosk-{n}")
    first = client.get(NEEDING, query_string={"limit": 2}, headers=pinger).json
    assert [item["uid"] for item in first["items"]] == ["kiosk-0", "kiosk-1"]
    query = {"limit": 2, "after": first["next_after"]}
    second = client.get(NEEDING, query_string=query, headers=pinger).json
    assert ([item["uid"] for item in second["items"]], second["next_after"]) == (["kiosk-2"], None)


@pytest.mark.parametrize("limit", ["0", "501", "many"])
def test_it_names_a_bad_page_size(client, pinger, limit):
    response = client.get(NEEDING, query_string={"limit": limit}, headers=pinger)
    assert response.status_code == 422
    assert "limit" in response.json["error"]["details"]["fields"]


def test_an_unreachable_result_takes_a_stale_device_offline(client, make_device, pinger):
    stale_device(make_device)
    body = {"uid": "kiosk-1", "reachable": False, "latency_ms": None}
    response = client.post(PING, json=body, headers=pinger)
    assert response.status_code == 200
    assert response.json == {
        "uid": "kiosk-1",
        "applied": True,
        "outcome": "applied",
        "reason": "unreachable by external ping",
        "status": "temporarily_offline",
        "status_changed": True,
    }
    assert events_of("kiosk-1") == [("connected", "temporarily_offline", "external_service")]
    assert device_row("kiosk-1").status_source == "external_service"


def test_a_fresh_heartbeat_wins_and_the_result_is_ignored(client, make_device, pinger):
    make_device("kiosk-1", last_address="192.0.2.10")
    response = client.post(PING, json={"uid": "kiosk-1", "reachable": False}, headers=pinger)
    assert response.status_code == 200
    assert (response.json["outcome"], response.json["status"]) == ("ignored", "connected")
    assert "heartbeat is fresh" in response.json["reason"]
    assert device_row("kiosk-1").ping_received_at is None


def test_a_reachable_result_is_recorded_as_diagnosis(client, make_device, pinger):
    stale_device(make_device, status="disconnected")
    checked_at = (utcnow() - timedelta(seconds=2)).isoformat()
    body = {"uid": "kiosk-1", "reachable": True, "latency_ms": 4.5, "checked_at": checked_at}
    response = client.post(PING, json=body, headers=pinger)
    assert (response.json["reason"], response.json["status"]) == (
        "reachable, app silent",
        "disconnected",
    )
    stored = device_row("kiosk-1")
    assert (stored.status, stored.ping_reachable, stored.ping_latency_ms) == (
        "disconnected",
        True,
        4.5,
    )
    assert stored.ping_checked_at.isoformat() == checked_at


def test_it_answers_404_for_an_unknown_device(client, pinger):
    response = client.post(PING, json={"uid": "nobody", "reachable": False}, headers=pinger)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "device_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reachable": False}, "uid"),
        ({"uid": "kiosk-1"}, "reachable"),
        ({"uid": "kiosk-1", "reachable": "no"}, "reachable"),
        ({"uid": "kiosk-1", "reachable": 0}, "reachable"),
        ({"uid": "kiosk-1", "reachable": True, "latency_ms": -1}, "latency_ms"),
        ({"uid": "kiosk-1", "reachable": True, "latency_ms": "fast"}, "latency_ms"),
        ({"uid": "kiosk-1", "reachable": True, "checked_at": "yesterday"}, "checked_at"),
        ({"uid": "kiosk-1", "reachable": True, "checked_at": "2026-01-01T10:00:00"}, "checked_at"),
        ({"uid": "bad uid!", "reachable": True}, "uid"),
    ],
)
def test_it_names_a_bad_field(client, make_device, pinger, body, field):
    stale_device(make_device)
    response = client.post(PING, json=body, headers=pinger)
    assert response.status_code == 422
    assert list(response.json["error"]["details"]["fields"]) == [field]
    assert device_row("kiosk-1").ping_received_at is None


def test_it_answers_400_for_malformed_json(client, pinger):
    response = client.post(
        PING, data="{nope", headers={**pinger, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed_json"


def test_each_answered_result_is_counted_by_applied_and_reachable(client, make_device, pinger):
    def counted(applied: str, reachable: str) -> float:
        labels = {"applied": applied, "reachable": reachable}
        return REGISTRY.get_sample_value("pulseboard_ping_results_total", labels) or 0.0

    stale_device(make_device)
    make_device("fresh-1")
    before = counted("true", "false"), counted("false", "false")
    for uid in ("kiosk-1", "fresh-1"):
        body = {"uid": uid, "reachable": False, "latency_ms": None}
        assert client.post(PING, json=body, headers=pinger).status_code == 200
    after = counted("true", "false"), counted("false", "false")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
