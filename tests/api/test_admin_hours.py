"""The hours and maintenance admin API: scoped, validated naming the field, in the OpenAPI doc."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleet.timeutil import utcnow
from tests.api.admin_support import bearer, service_token

BODY = {
    "timezone": "Europe/Berlin",
    "weekly": {"mon": [["08:00", "20:00"]], "tue": [["07:00", "12:00"], ["13:00", "22:00"]]},
    "holidays": {"country": "DE", "subdivision": "BE"},
    "closures": [{"from": "2026-12-24", "to": "2026-12-26", "note": "Christmas"}],
}


@pytest.fixture
def operate(app) -> dict[str, str]:
    return bearer(service_token("read", "operate"))


def test_it_sets_and_reads_a_site_schedule(client, operate):
    put = client.put("/api/admin/sites/Harbour%20Mall/schedule", json=BODY, headers=operate)
    assert put.status_code == 200, put.json
    got = client.get("/api/admin/sites/Harbour%20Mall/schedule", headers=operate).json
    assert got["scheduled"] is True and got["site"] == "Harbour Mall"
    assert got["weekly"]["tue"] == [["07:00", "12:00"], ["13:00", "22:00"]]
    assert got["weekly"]["sun"] == []
    assert got["holidays"] == {"country": "DE", "subdivision": "BE"}
    assert got["closures"] == [{"from": "2026-12-24", "to": "2026-12-26", "note": "Christmas"}]
    assert got["updated_by"] == "token:token-read-operate"
    assert got["next_change"] is not None


def test_no_schedule_means_always_open(client, operate):
    got = client.get("/api/admin/sites/nowhere/schedule", headers=operate).json
    assert (got["scheduled"], got["open_now"], got["next_change"]) == (False, True, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"weekly": {"mon": [["08:00", "99:00"]]}}, "weekly.mon[0][1]"),
        ({"weekly": {"someday": []}}, "weekly"),
        ({"holidays": {"country": "DE", "subdivision": "XX"}}, "holidays.subdivision"),
        ({"closures": [{"from": "not a date"}]}, "closures[0]"),
        ({"timezone": 7}, "timezone"),
    ],
)
def test_bad_input_gets_the_error_shape_naming_the_field_and_changes_nothing(
    client, operate, change, field
):
    response = client.put(
        "/api/admin/sites/mall/schedule", json={**BODY, **change}, headers=operate
    )
    assert response.status_code == 422
    assert field in response.json["error"]["details"]["fields"]
    assert client.get("/api/admin/sites/mall/schedule", headers=operate).json["scheduled"] is False


def test_writing_needs_the_operate_scope(client):
    read_only = bearer(service_token("read"))
    response = client.put("/api/admin/sites/mall/schedule", json=BODY, headers=read_only)
    assert response.status_code == 403
    assert client.post("/api/admin/maintenance", json={}, headers=read_only).status_code == 403
    assert client.get("/api/admin/maintenance").status_code == 401


def test_a_maintenance_window_silences_its_devices_and_the_list_filters_by_it(
    client, operate, make_device
):
    make_device("kiosk-1", site="mall")
    make_device("kiosk-2", site="station")
    ends = (utcnow() + timedelta(hours=1)).isoformat()
    created = client.post(
        "/api/admin/maintenance",
        json={"site": "mall", "ends_at": ends, "note": "new screens"},
        headers=operate,
    )
    assert created.status_code == 201, created.json
    assert (created.json["state"], created.json["created_by"]) == ("on", "token:token-read-operate")
    device = client.get("/api/admin/devices/kiosk-1", headers=operate).json
    assert device["expected_off"] == "maintenance"
    listed = client.get("/api/admin/devices?expected_off=maintenance", headers=operate).json
    assert [item["uid"] for item in listed["items"]] == ["kiosk-1"]
    on = client.get("/api/admin/devices?expected_off=none", headers=operate).json
    assert [item["uid"] for item in on["items"]] == ["kiosk-2"]
    bad = client.get("/api/admin/devices?expected_off=sometimes", headers=operate)
    assert bad.status_code == 422 and "expected_off" in bad.json["error"]["details"]["fields"]

    window_id = created.json["id"]
    [listed_window] = client.get("/api/admin/maintenance", headers=operate).json["items"]
    assert listed_window["id"] == window_id and listed_window["note"] == "new screens"
    ended = client.post(f"/api/admin/maintenance/{window_id}/end", headers=operate)
    assert ended.status_code == 200 and ended.json["state"] == "ended early"
    assert client.get("/api/admin/devices/kiosk-1", headers=operate).json["expected_off"] is None
    again = client.post(f"/api/admin/maintenance/{window_id}/end", headers=operate)
    assert again.status_code == 409
    assert client.post("/api/admin/maintenance/999/end", headers=operate).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ends_at": "2099-01-01T00:00:00Z"}, "site"),
        ({"site": "mall", "cron": "0 2 * * sun"}, "duration_minutes"),
        ({"site": "mall", "cron": "whenever", "duration_minutes": 5}, "cron"),
        ({"site": "mall", "ends_at": "2099-01-01T00:00:00"}, "ends_at"),
        ({"uids": ["ghost"], "ends_at": "2099-01-01T00:00:00Z"}, "uids"),
        (
            {"site": "mall", "ends_at": "2099-01-01T00:00:00Z", "timezone": "Nowhere/Land"},
            "timezone",
        ),
    ],
)
def test_a_bad_window_gets_the_error_shape_naming_the_field(client, operate, body, field):
    response = client.post("/api/admin/maintenance", json=body, headers=operate)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]
    assert client.get("/api/admin/maintenance", headers=operate).json["items"] == []


def test_the_openapi_document_describes_them(client):
    paths = client.get("/api/openapi.json").json["paths"]
    assert {"get", "put"} <= set(paths["/api/admin/sites/{site}/schedule"])
    assert {"get", "post"} <= set(paths["/api/admin/maintenance"])
    assert "post" in paths["/api/admin/maintenance/{window_id}/end"]
