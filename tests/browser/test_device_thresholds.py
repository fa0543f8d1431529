"""The device page's thresholds form as an admin uses it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.test_fleet_page import log_in


def test_a_refused_save_shows_its_error_beside_the_form_and_keeps_the_typed_values(
    page: Page, live_server, make_device
):
    make_device("alpha")
    page.set_viewport_size({"width": 1400, "height": 700})
    log_in(page, live_server, "admin", "/devices/alpha")
    page.get_by_label("Interval (s)").fill("200")
    page.get_by_label("Grace (s)").fill("100")
    page.get_by_label("Disconnect after (s)").fill("250")
    page.get_by_role("button", name="Save").click()
    error = page.get_by_role("alert")
    expect(error).to_contain_text("disconnect-after must be greater than interval + grace")
    expect(error).to_be_in_viewport()
    expect(page.get_by_label("Interval (s)")).to_have_value("200")
    expect(page.get_by_label("Grace (s)")).to_have_value("100")
    expect(page.get_by_label("Disconnect after (s)")).to_have_value("250")
