"""The Sites page, the reports page and its CSV, and the status bars on the device page and grid."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from fleet.services.availability.reports import DEVICE_COLUMNS, OUTAGE_COLUMNS
from tests.services.availability_support import expect_off, move

T0 = datetime(2026, 11, 4, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=4)


@pytest.fixture
def fleet(make_device, time_machine):
    """north: one device down for an hour; south: always up; one device with no site."""
    time_machine.move_to(T0, tick=False)
    down = make_device("north-1", now=T0, site="north")
    make_device("north-2", now=T0, site="north")
    make_device("south-1", now=T0, site="south")
    make_device("loose-1", now=T0)
    move(down, "disconnected", T0 + timedelta(hours=1))
    move(down, "connected", T0 + timedelta(hours=2))
    time_machine.move_to(NOW, tick=False)
    return down


def text(response) -> str:
    return response.get_data(as_text=True)


def site_names(html: str) -> list[str]:
    return re.findall(r'<td class="c-site-name"><a href="/\?site=(\w+)">', html)


def test_the_sites_page_lists_sites_worst_first_with_their_figures(client, login, fleet):
    login("viewer")
    response = client.get("/sites")
    assert response.status_code == 200
    html = text(response)
    assert site_names(html) == ["north", "south"]
    # north: 7 h connected of 8 h expected on over 24 h.
    assert "87.50 %" in html
    assert "100 %" in html
    # The fleet is four hours old, so the 30-day figures are the 24-hour ones.
    month = re.findall(r'data-label="30 d"[^>]*>([^<]+)<', html)
    assert month == ["87.50 %", "100 %", "100 %"]
    assert 'north-1</a> <span class="muted">75.00 %' in html
    assert "no site" in html


def test_the_sites_page_sorts_by_name_and_searches(client, login, fleet):
    login("viewer")
    html = text(client.get("/sites?sort=name"))
    assert site_names(html) == ["north", "south"]
    html = text(client.get("/sites?q=sou"))
    assert site_names(html) == ["south"]
    assert "1 site" in html
    assert "No sites match" in text(client.get("/sites?q=%25_nothing"))


def test_the_sites_page_ignores_bad_parameters(client, login, fleet):
    login("viewer")
    response = client.get("/sites?sort=evil&page=abc")
    assert response.status_code == 200
    assert site_names(text(response)) == ["north", "south"]


def test_the_sites_page_pages_through_many_sites(client, login, make_device):
    login("viewer")
    for n in range(55):
        make_device(f"k-{n:02d}", site=f"site{n:02d}")
    first = text(client.get("/sites?sort=name"))
    assert len(site_names(first)) == 50
    assert "Page 1 of 2" in first
    second = text(client.get("/sites?sort=name&page=2"))
    assert site_names(second) == [f"site{n}" for n in range(50, 55)]
    past_the_end = text(client.get("/sites?sort=name&page=9"))
    assert "Page 2 of 2" in past_the_end
    assert site_names(past_the_end) == site_names(second)
    assert "Page 1 of 2" in text(client.get("/sites?sort=name&page=0"))


def test_the_sites_page_sorts_by_devices_then_name(client, login, fleet, make_device):
    login("viewer")
    make_device("south-2", site="south")
    make_device("south-3", site="south")
    assert site_names(text(client.get("/sites?sort=devices"))) == ["south", "north"]


def test_the_sites_page_needs_a_login(client):
    assert client.get("/sites").status_code == 302


def test_the_device_page_shows_both_bars_with_words(client, login, fleet):
    login("viewer")
    html = text(client.get("/devices/north-1"))
    assert 'aria-label="Last 24 hours: 75.00 % available"' in html
    assert 'aria-label="Last 30 days: 75.00 % available"' in html
    assert "3 h 00 min connected of 4 h 00 min expected on" in html
    assert "09:00\u201310:00 UTC: 0.00 % available; disconnected 1 h 00 min" in html
    assert "off hours" in html


def test_each_grid_row_has_its_24_hour_bar(client, login, fleet):
    login("viewer")
    html = text(client.get("/"))
    assert html.count('class="c-bar"') == 4
    assert html.count('class="status-bar compact"') == 4
    assert '<span class="bar-figure">75.00 %</span>' in html


def test_expected_off_time_is_drawn_as_off_hours(client, login, fleet, time_machine):
    login("viewer")
    expect_off(fleet, "off_hours", NOW - timedelta(minutes=30))
    html = text(client.get("/devices/north-1"))
    assert "off hours 30 min" in html


def test_the_reports_page_shows_the_range_per_site_and_the_outages(client, login, fleet):
    login("viewer")
    html = text(client.get("/reports?from=2026-11-04&to=2026-11-04&by=site"))
    assert "Fleet: <strong>93.75 %</strong> available" in html
    assert ">north</a>" in html
    assert "2026-11-04 09:00:00 UTC" in html  # the outage's start
    assert "/reports/availability.csv?by=device" in html


def test_the_reports_page_names_bad_dates(client, login, fleet):
    login("viewer")
    response = client.get("/reports?from=yesterday&to=2026-11-04")
    assert response.status_code == 422
    assert "from is not a date" in text(response)
    response = client.get("/reports?from=2026-11-05&to=2026-11-04")
    assert "to must not be before from" in text(response)


def test_the_csv_downloads_name_their_columns(client, login, fleet):
    login("viewer")
    response = client.get("/reports/availability.csv?from=2026-11-04&to=2026-11-04")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(text(response))))
    assert tuple(rows[0]) == DEVICE_COLUMNS
    assert [row[0] for row in rows[1:]] == ["loose-1", "north-1", "north-2", "south-1"]
    response = client.get("/reports/outages.csv?from=2026-11-04&to=2026-11-04")
    rows = list(csv.reader(io.StringIO(text(response))))
    assert tuple(rows[0]) == OUTAGE_COLUMNS
    assert rows[1][0] == "north-1" and rows[1][5] == "3600"


def test_the_nav_links_to_sites_and_reports(client, login, fleet):
    login("viewer")
    html = text(client.get("/sites"))
    assert 'href="/sites" aria-current="page">Sites</a>' in html
    assert 'href="/reports"' in html
