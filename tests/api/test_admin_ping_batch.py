"""Ping results in batches: answered item by item, a bad item reported in its place."""

from datetime import timedelta

import pytest

from fleet.timeutil import utcnow
from tests.api.admin_support import bearer, service_token
from tests.helpers import device_row, events_of

BATCH = "/api/admin/external/ping-batch"


@pytest.fixture
def pinger():
    return bearer(service_token("ping"))


def test_it_applies_the_good_items_and_reports_the_bad_in_place(client, make_device, pinger):
    long_ago = utcnow() - timedelta(seconds=120)
    make_device("stale-1", now=long_ago)
    make_device("stale-2", now=long_ago, status="temporarily_offline")
    make_device("fresh")
    results = [
        {"uid": "stale-1", "reachable": False, "latency_ms": None},
        {"uid": "nobody", "reachable": False},
        "not an object",
        {"uid": "stale-2", "reachable": "yes"},
        {"uid": "stale-2", "reachable": True, "latency_ms": 8},
        {"reachable": True},
        {"uid": "fresh", "reachable": False},
    ]
    response = client.post(BATCH, json={"results": results}, headers=pinger)
    assert response.status_code == 200
    body = response.json
    assert (body["applied"], body["ignored"], body["errors"]) == (2, 1, 4)
    answers = body["results"]
    assert [item["index"] for item in answers] == list(range(7))
    assert [item["outcome"] for item in answers] == [
        "applied",
        "error",
        "error",
        "error",
        "applied",
        "error",
        "ignored",
    ]
    assert answers[0]["status"] == "temporarily_offline"
    assert (answers[1]["uid"], answers[1]["error"]["code"]) == ("nobody", "device_not_found")
    assert answers[2]["error"]["code"] == "malformed_item"
    assert answers[3]["uid"] == "stale-2"
    assert list(answers[3]["error"]["details"]["fields"]) == ["reachable"]
    assert list(answers[5]["error"]["details"]["fields"]) == ["uid"]
    assert "fresh" in answers[6]["reason"]
    assert events_of("stale-1") == [("connected", "temporarily_offline", "external_service")]
    assert (device_row("stale-2").ping_reachable, device_row("stale-2").ping_latency_ms) == (
        True,
        8,
    )
    assert device_row("fresh").ping_received_at is None


def test_it_takes_500_items(client, make_device, pinger):
    make_device("kiosk-1", now=utcnow() - timedelta(seconds=120))
    results = [{"uid": "kiosk-1", "reachable": True}] * 500
    body = client.post(BATCH, json={"results": results}, headers=pinger).json
    assert (body["applied"], len(body["results"])) == (500, 500)


@pytest.mark.parametrize(
    "body",
    [
        {"results": [{"uid": "kiosk-1", "reachable": True}] * 501},
        {"results": []},
        {"results": {"uid": "kiosk-1"}},
        {},
    ],
)
def test_it_refuses_a_batch_that_is_not_a_list_of_1_to_500(client, pinger, body):
    response = client.post(BATCH, json=body, headers=pinger)
    assert response.status_code == 422
    assert list(response.json["error"]["details"]["fields"]) == ["results"]
