"""The maintenance page, the site schedule page, and expected-off devices on the grid."""

from __future__ import annotations

from datetime import timedelta

from fleet.services import hours
from fleet.services.device_state import get_device
from fleet.timeutil import utcnow

NEVER_OPEN = {"timezone": "Europe/Berlin", "weekly": {}}


def test_an_operator_creates_a_window_that_silences_a_site(client, login, make_device):
    make_device("kiosk-1", site="mall")
    token = login("operator")
    ends = (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/maintenance",
        data={"csrf_token": token, "target": "site", "site": "mall", "ends_at": ends,
              "when": "once", "note": "new screens"},
    )  # fmt: skip
    assert response.status_code == 302
    page = client.get("/maintenance").get_data(as_text=True)
    assert "Maintenance window #1 created for site mall" in page
    assert "new screens" in page and "operator@example.com" in page
    assert get_device("kiosk-1").expected_off == "maintenance"
    grid = client.get("/?expected_off=maintenance").get_data(as_text=True)
    assert "kiosk-1" in grid and "· maintenance" in grid


def test_a_bad_window_from_the_form_says_which_field_and_creates_nothing(client, login):
    token = login("operator")
    data = {"csrf_token": token, "target": "site", "site": "mall", "ends_at": "tomorrow"}
    client.post("/maintenance", data=data)
    page = client.get("/maintenance").get_data(as_text=True)
    assert "ends_at" in page and "No maintenance windows." in page


def test_a_viewer_sees_the_windows_but_cannot_make_or_end_one(client, login, make_device):
    make_device("kiosk-1", site="mall")
    window = hours.create_window(
        hours.WindowSpec(site="mall", ends_at=utcnow() + timedelta(hours=1)), "ops", utcnow()
    )
    token = login("viewer")
    page = client.get("/maintenance").get_data(as_text=True)
    assert "site mall" in page and "New window" not in page
    assert client.post("/maintenance", data={"csrf_token": token}).status_code == 403
    ended = client.post(f"/maintenance/{window.id}/end", data={"csrf_token": token})
    assert ended.status_code == 403


def test_an_operator_ends_a_window_early(client, login, make_device):
    make_device("kiosk-1", site="mall")
    window = hours.create_window(
        hours.WindowSpec(site="mall", ends_at=utcnow() + timedelta(hours=1)), "ops", utcnow()
    )
    token = login("operator")
    client.post(f"/maintenance/{window.id}/end", data={"csrf_token": token})
    assert get_device("kiosk-1").expected_off is None
    assert "ended early" in client.get("/maintenance").get_data(as_text=True)


def test_the_grid_shows_off_hours_muted_in_words_with_its_counter(client, login, make_device):
    make_device("kiosk-1", site="mall", status="disconnected")
    make_device("kiosk-2", site="station")
    hours.set_site_hours("mall", NEVER_OPEN, "ops", utcnow())
    login("viewer")
    grid = client.get("/").get_data(as_text=True)
    assert "status-expected-off" in grid and "Disconnected<span" in grid
    assert "· off hours" in grid
    assert 'data-count="off_hours"' in grid
    only = client.get("/?expected_off=off_hours").get_data(as_text=True)
    assert "kiosk-1" in only and "kiosk-2" not in only


def test_the_device_and_site_pages_show_the_hours_and_next_change(client, login, make_device):
    make_device("kiosk-1", site="mall")
    schedule = {"timezone": "Europe/Berlin", "weekly": {"mon": [["08:00", "20:00"]]},
                "holidays": {"country": "DE", "subdivision": "BE"}}  # fmt: skip
    hours.set_site_hours("mall", schedule, "ops", utcnow())
    login("viewer")
    device_page = client.get("/devices/kiosk-1").get_data(as_text=True)
    assert "Operating hours" in device_page and "mon 08:00-20:00" in device_page
    assert "opens" in device_page and "Europe/Berlin" in device_page
    site_page = client.get("/sites/mall/schedule").get_data(as_text=True)
    assert "Closed on public holidays of DE-BE" in site_page
    assert "sun closed" in site_page


def test_an_operator_sets_a_sites_hours_from_its_page(client, login, make_device):
    make_device("kiosk-1", site="mall")
    token = login("operator")
    data = {"csrf_token": token, "timezone": "Europe/Berlin", "hours": "mon-fri 08:00-20:00\n",
            "holidays": "DE-BE", "closures": "2026-12-24:2026-12-26:Christmas"}  # fmt: skip
    client.post("/sites/mall/schedule", data=data)
    page = client.get("/sites/mall/schedule").get_data(as_text=True)
    assert "Operating hours of mall saved." in page
    assert "fri 08:00-20:00" in page and "Christmas" in page
    assert hours.get_site_hours("mall").updated_by == "operator@example.com"
    bad = dict(data, hours="someday 08:00-20:00")
    client.post("/sites/mall/schedule", data=bad)
    page = client.get("/sites/mall/schedule").get_data(as_text=True)
    assert "days are mon" in page and "fri 08:00-20:00" in page


def test_a_viewer_cannot_set_hours(client, login):
    token = login("viewer")
    page = client.get("/sites/mall/schedule").get_data(as_text=True)
    assert "Set the hours" not in page
    denied = client.post("/sites/mall/schedule", data={"csrf_token": token, "timezone": "UTC"})
    assert denied.status_code == 403
