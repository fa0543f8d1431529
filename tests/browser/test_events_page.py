"""The Events page in a browser: partial filters, and new events arriving by themselves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from fleet.extensions import db
from fleet.services.alerts.audit import write_log
from fleet.timeutil import utcnow
from tests.browser.test_accessibility import WIDTHS, serious_violations
from tests.browser.test_fleet_page import LIVE, log_in


def test_its_filters_match_part_of_a_uid_or_site_in_any_case(page: Page, live_server, make_device):
    make_device("Lobby-Berlin-01", site="Berlin Mitte")
    make_device("lobby-paris-01", site="Paris Nord")
    log_in(page, live_server, "viewer", "/events")
    page.get_by_label("Site", exact=True).fill("MITTE")
    page.get_by_label("Site", exact=True).press("Enter")
    rows = page.locator("#event-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Lobby-Berlin-01")
    expect(page.locator(".pager")).to_contain_text("Page 1 of 1, 1 event")
    page.get_by_label("Site", exact=True).fill("")
    page.get_by_label("Device", exact=True).fill("PARIS")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("lobby-paris-01")


def test_new_events_arrive_at_the_top_keeping_focus_scroll_and_typing(
    app, page: Page, live_server, make_device
):
    start = utcnow() - timedelta(hours=1)
    for n in range(40):
        make_device(f"kiosk-{n:02}", now=start + timedelta(seconds=n))
    page.set_viewport_size({"width": 1400, "height": 600})
    log_in(page, live_server, "viewer", "/events")
    expect(page.locator("#event-rows tr")).to_have_count(40)
    # Scrolled to the middle of the list, typing a search not yet applied.
    reason = page.get_by_label("Reason", exact=True)
    reason.focus()
    page.keyboard.type("heart", delay=20)
    landmark = page.locator("#event-rows tr", has_text="kiosk-20")
    page.mouse.wheel(0, 700)
    page.wait_for_function("window.scrollY >= 700")
    top_before = landmark.bounding_box()["y"]

    make_device("kiosk-new")
    write_log("rule_added", "rule desk added", "admin@example.com", utcnow())
    db.session.commit()

    first = page.locator("#event-rows tr").first
    expect(first).to_contain_text("rule desk added", timeout=LIVE)
    expect(page.locator("#event-rows tr").nth(1)).to_contain_text("kiosk-new")
    expect(page.locator("#events-news")).to_have_text("2 new events at the top.")
    expect(page.locator("#events-news")).to_have_attribute("aria-live", "polite")
    expect(reason).to_be_focused()
    expect(reason).to_have_value("heart")
    # What was on screen stays where it was: the rows came in above it.
    assert abs(landmark.bounding_box()["y"] - top_before) < 2
    expect(page.locator("#event-rows tr")).to_have_count(42)


@pytest.mark.parametrize("width", WIDTHS)
def test_it_has_no_serious_violation_with_both_kinds_of_entry_and_live_news(
    page: Page, live_server, make_device, width
):
    make_device("alpha", site="Berlin")
    write_log("incident_opened", "incident 1 opened by rule down", None, utcnow())
    db.session.commit()
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, "viewer", "/events?reason=e")
    write_log("window_opened", "maintenance window", "ops@example.com", utcnow(),
              details={"site": "Berlin", "minutes": 30})  # fmt: skip
    db.session.commit()
    expect(page.locator("#events-news")).to_have_text("1 new event at the top.", timeout=LIVE)
    expect(page.locator("#event-rows")).to_contain_text("minutes: 30")
    assert serious_violations(page) == []
