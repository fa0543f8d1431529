"""The availability API: a device's availability, reports and outages, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from fleet.services.availability.reports import DEVICE_COLUMNS, OUTAGE_COLUMNS, SITE_COLUMNS
from tests.api.admin_support import bearer, service_token
from tests.services.availability_support import expect_off, move

T0 = datetime(2026, 11, 4, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=4)
DAY = {"from": "2026-11-04", "to": "2026-11-04"}


@pytest.fixture
def reader():
    return bearer(service_token("read"))


@pytest.fixture
def history(make_device, time_machine):
    """kiosk-1 (north): down 08:30-09:00, off hours 10:00-11:00; kiosk-2 (south) always up."""
    time_machine.move_to(T0, tick=False)
    first = make_device("kiosk-1", now=T0, site="north")
    make_device("kiosk-2", now=T0, site="south", name="=HYPERLINK(1)")
    move(first, "disconnected", T0 + timedelta(minutes=30))
    move(first, "connected", T0 + timedelta(hours=1))
    expect_off(first, "off_hours", T0 + timedelta(hours=2))
    expect_off(first, None, T0 + timedelta(hours=3))
    time_machine.move_to(NOW, tick=False)
    return first


def rows_of(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_a_device_availability_names_its_window_and_seconds(client, history, reader):
    response = client.get("/api/admin/devices/kiosk-1/availability?window=24h", headers=reader)
    assert response.status_code == 200
    body = response.json
    assert body["window"] == "24h"
    assert body["seconds"] == {
        "connected": 2.5 * 3600,
        "temporarily_offline": 0,
        "disconnected": 1800,
        "off_hours": 3600,
    }
    assert body["expected_on_seconds"] == 3 * 3600
    assert body["availability"] == pytest.approx(2.5 / 3)
    assert body["start"] == "2026-11-03T13:00:00Z"


@pytest.mark.parametrize(
    ("window", "start"),
    [("7d", "2026-10-29"), ("30d", "2026-10-06"), ("90d", "2026-08-07")],
)
def test_the_day_windows_start_at_utc_midnight(client, history, reader, window, start):
    url = f"/api/admin/devices/kiosk-1/availability?window={window}"
    response = client.get(url, headers=reader)
    assert response.json["start"] == f"{start}T00:00:00Z"
    # Enrolled this morning: the same figures as over 24 h.
    assert response.json["expected_on_seconds"] == 3 * 3600


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/admin/devices/kiosk-1/availability?window=1y", "window"),
        ("/api/admin/reports/availability?from=2026-11-04&to=2026-11-01", "to"),
        ("/api/admin/reports/availability?from=nope&to=2026-11-01", "from"),
        ("/api/admin/reports/availability?to=2026-11-01", "from"),
        ("/api/admin/reports/availability?from=2026-11-01&to=2026-11-02&by=planet", "by"),
        ("/api/admin/reports/availability?from=2024-01-01&to=2026-11-02", "to"),
        ("/api/admin/reports/outages?from=2026-11-01&to=2026-11-02&format=xml", "format"),
        ("/api/admin/reports/outages?from=2026-11-01&to=2026-11-02&limit=0", "limit"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, history, reader, url, field):
    response = client.get(url, headers=reader)
    assert response.status_code == 422
    assert field in response.json["error"]["details"]["fields"]


def test_an_unknown_device_is_a_404(client, history, reader):
    response = client.get("/api/admin/devices/nobody/availability", headers=reader)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "device_not_found"


@pytest.mark.parametrize(
    "url",
    [
        "/api/admin/devices/kiosk-1/availability",
        "/api/admin/reports/availability?from=2026-11-04&to=2026-11-04",
        "/api/admin/reports/outages?from=2026-11-04&to=2026-11-04",
    ],
)
def test_it_needs_the_read_scope(client, history, url):
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer(service_token("ping"))).status_code == 403


def test_the_report_by_site_sums_its_devices(client, history, reader):
    response = client.get(
        "/api/admin/reports/availability", query_string={**DAY, "by": "site"}, headers=reader
    )
    assert response.status_code == 200
    items = {item["site"]: item for item in response.json["items"]}
    assert items["north"]["availability"] == pytest.approx(2.5 / 3)
    assert items["north"]["outages"] == 1
    assert items["south"]["expected_on_seconds"] == 4 * 3600
    assert response.json["end"] == "2026-11-04T12:00:00Z"


def test_the_fleet_report_is_one_row(client, history, reader):
    response = client.get(
        "/api/admin/reports/availability", query_string={**DAY, "by": "fleet"}, headers=reader
    )
    [fleet] = response.json["items"]
    assert fleet["devices"] == 2
    assert fleet["availability"] == pytest.approx(6.5 / 7)


def test_the_device_csv_names_its_columns_on_the_first_line(client, history, reader):
    response = client.get(
        "/api/admin/reports/availability", query_string={**DAY, "format": "csv"}, headers=reader
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    header, first, second = rows_of(response)
    assert tuple(header) == DEVICE_COLUMNS
    row = dict(zip(header, first, strict=True))
    assert row["uid"] == "kiosk-1"
    assert float(row["availability"]) == pytest.approx(2.5 / 3, abs=1e-6)
    assert (row["connected_seconds"], row["expected_on_seconds"], row["outages"]) == (
        "9000",
        "10800",
        "1",
    )
    # A name a spreadsheet would run as a formula is written as text.
    assert dict(zip(header, second, strict=True))["name"] == "'=HYPERLINK(1)"


def test_the_site_csv_names_its_columns(client, history, reader):
    response = client.get(
        "/api/admin/reports/availability",
        query_string={**DAY, "format": "csv", "by": "site", "site": "north"},
        headers=reader,
    )
    header, north = rows_of(response)
    assert tuple(header) == SITE_COLUMNS
    assert north[:2] == ["north", "1"]


def test_the_outages_list_their_device_span_and_reason(client, history, reader):
    response = client.get("/api/admin/reports/outages", query_string=DAY, headers=reader)
    [outage] = response.json["items"]
    assert outage["uid"] == "kiosk-1"
    assert outage["started_at"] == "2026-11-04T08:30:00Z"
    assert outage["ended_at"] == "2026-11-04T09:00:00Z"
    assert outage["duration_seconds"] == 1800
    assert (outage["status"], outage["reason"], outage["ended_by"]) == (
        "disconnected",
        "test",
        "connected",
    )
    csv_response = client.get(
        "/api/admin/reports/outages", query_string={**DAY, "format": "csv"}, headers=reader
    )
    header, row = rows_of(csv_response)
    assert tuple(header) == OUTAGE_COLUMNS
    assert row[0] == "kiosk-1" and row[5] == "1800"


def test_the_openapi_document_describes_the_csv(client):
    document = client.get("/api/openapi.json").json
    operation = document["paths"]["/api/admin/reports/availability"]["get"]
    content = operation["responses"]["200"]["content"]
    assert content["text/csv"]["example"].startswith("uid,name,site,from,to,availability")
    assert "/api/admin/devices/{uid}/availability" in document["paths"]
    names = [p["name"] for p in operation["parameters"]]
    assert {"from", "to", "by", "site", "format"} <= set(names)
