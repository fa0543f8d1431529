"""A maintenance window made in a real browser silences its devices on the grid."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.browser.test_fleet_page import LIVE, log_in


def test_an_operator_creates_a_window_and_the_grid_shows_its_devices_in_maintenance(
    app, page: Page, live_server, make_device
):
    silent_since = utcnow() - timedelta(minutes=30)
    make_device("kiosk-1", now=silent_since, site="Harbour Mall")
    make_device("kiosk-2", now=silent_since, site="Harbour Mall")
    make_device("kiosk-3", now=silent_since, site="Station")
    enforce_timeouts(utcnow())
    log_in(page, live_server, "operator", "/")
    # The grid is open first: the window reaches it through its own poll.
    row = page.locator("tr[data-uid='kiosk-1'] .c-status > .status")
    expect(row).to_have_text("Disconnected")

    maintenance = page.context.new_page()
    maintenance.goto(live_server + "/maintenance")
    form = maintenance.locator("#window-form")
    form.get_by_label("a site").check()
    form.get_by_placeholder("site name").fill("Harbour Mall")
    ends = (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    form.get_by_label("Ends").fill(ends)
    form.get_by_label("Note").fill("replacing the screens")
    form.get_by_role("button", name="Create window").click()
    expect(maintenance.locator(".flash")).to_contain_text("created for site Harbour Mall")
    expect(maintenance.locator("#windows")).to_contain_text("replacing the screens")
    expect(maintenance.locator("#windows .window-state").first).to_have_text("on")

    expect(row).to_have_text("Disconnected · maintenance", timeout=LIVE)
    expect(page.locator("tr[data-uid='kiosk-1'] .status-expected-off")).to_be_visible()
    expect(page.locator("tr[data-uid='kiosk-3'] .c-status > .status")).to_have_text("Disconnected")
    expect(page.locator("[data-count='maintenance'] .count")).to_have_text("2", timeout=LIVE)
    page.locator("[data-count='maintenance']").click()
    expect(page.locator("tr.device-row")).to_have_count(2)
