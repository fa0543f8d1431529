"""axe-core (vendored, tests/browser/vendor) finds no serious or critical violation.

The script is evaluated through the DevTools protocol, which the page's
Content-Security-Policy does not govern, so nothing is loaded from elsewhere.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from fleet.timeutil import utcnow
from tests.browser.test_device_timeline import flapping_device
from tests.browser.test_fleet_page import log_in

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
WIDTHS = [1400, 390]


def serious_violations(page: Page) -> list[str]:
    page.evaluate(AXE)
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {len(v['nodes'])} nodes, e.g. {v['nodes'][0]['target']}"
        for v in results["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_login_page_has_no_serious_violation(page: Page, live_server, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server + "/login")
    assert serious_violations(page) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_fleet_device_and_events_pages_have_no_serious_violation(
    page: Page, live_server, make_device, width
):
    make_device("alpha", site="Berlin", name="Lobby screen")
    make_device("bravo", status="temporarily_offline", status_reason="late")
    make_device(
        "charlie", now=utcnow() - timedelta(hours=1), status="disconnected", status_reason="quiet"
    )
    flapping_device(make_device)  # a timeline of many stretches, and charts with samples
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, "admin")
    found = {}
    for path in ("/", "/devices/charlie", "/devices/flappy?span=1h", "/events"):
        page.goto(live_server + path)
        expect(page.locator("main")).to_be_visible()
        found[path] = serious_violations(page)
    assert found == {
        "/": [],
        "/devices/charlie": [],
        "/devices/flappy?span=1h": [],
        "/events": [],
    }
