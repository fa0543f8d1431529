"""The Sites page, the reports page and the status bars in a real browser, desk and phone."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from fleet.timeutil import utcnow
from tests.browser.test_accessibility import serious_violations
from tests.browser.test_fleet_page import log_in
from tests.services.availability_support import move

WIDTHS = [1400, 390]


@pytest.fixture
def history(make_device):
    start = utcnow() - timedelta(hours=3)
    down = make_device("lobby-1", now=start, site="Berlin Mitte")
    make_device("lobby-2", now=start, site="Berlin Mitte")
    make_device("gate-1", now=start, site="Hamburg")
    move(down, "disconnected", start + timedelta(hours=1))
    move(down, "connected", start + timedelta(hours=2))


@pytest.mark.parametrize("width", WIDTHS)
def test_a_manager_finds_the_worst_site_and_opens_its_devices(
    page: Page, live_server, history, width
):
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, "viewer", "/sites")
    first = page.locator("#sites tbody tr").first
    expect(first).to_contain_text("Berlin Mitte")
    # Real time runs on while the page loads: 5 h of 6 connected, give or take a second.
    expect(first).to_contain_text(re.compile(r"83\.3\d %"))
    expect(first.locator(".worst")).to_contain_text("lobby-1")
    # Nothing runs off the side of a phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert serious_violations(page) == []
    first.get_by_role("link", name="Berlin Mitte").click()
    expect(page.locator("#grid tbody tr")).to_have_count(2)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_device_bars_say_in_words_what_the_colours_show(
    page: Page, live_server, history, width
):
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, "viewer", "/devices/lobby-1")
    bars = page.locator("#availability svg.status-bar")
    expect(bars).to_have_count(2)
    label = re.compile(r"Last 24 hours: 66\.6\d % available")
    expect(bars.first).to_have_attribute("aria-label", label)
    expect(page.locator("#availability .bar-summary").first).to_contain_text(
        "disconnected 1 h 00 min"
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert serious_violations(page) == []


def test_the_reports_page_offers_its_csv(page: Page, live_server, history):
    log_in(page, live_server, "viewer", "/reports")
    expect(page.locator("h2").first).to_contain_text("available")
    with page.expect_download() as download:
        page.get_by_role("link", name="per device").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("uid,name,site,from,to,availability")
    assert len(lines) == 4
