"""The dashboard under its Content-Security-Policy: everything still works, nothing is refused,
and an inline script an attacker might slip in is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from fleet.timeutil import utcnow
from tests.browser.test_fleet_page import LIVE, heartbeat, log_in, row

# Runs before the page's own scripts (Playwright injects it past the policy).
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.fixture
def watched(page: Page) -> Page:
    page.add_init_script(RECORD_VIOLATIONS)
    return page


def violations(page: Page) -> list[str]:
    return page.evaluate("window.cspViolations")


def test_the_live_grid_and_its_actions_work_with_nothing_refused(
    app, watched: Page, live_server, make_device
):
    alpha = make_device("alpha", site="Berlin")
    quiet = make_device("quiet", now=utcnow() - timedelta(minutes=30), status="disconnected")
    answers = []
    watched.on("response", lambda response: answers.append(response))
    log_in(watched, live_server, "operator")
    row(watched, alpha).get_by_role("button", name="Reconnect").click()  # an htmx POST
    expect(row(watched, alpha).locator(".reconnect")).to_have_text("pending")
    heartbeat(app, quiet.token)
    expect(row(watched, quiet).locator(".status")).to_have_text("Connected", timeout=LIVE)
    assert violations(watched) == []
    page_answer = next(a for a in answers if a.url == live_server + "/")
    assert "script-src 'self'" in page_answer.headers["content-security-policy"]


def test_the_device_page_draws_and_refreshes_with_nothing_refused(
    app, watched: Page, live_server, make_device
):
    alpha = make_device("alpha", now=utcnow() - timedelta(minutes=30), status="disconnected")
    log_in(watched, live_server, "admin", "/devices/alpha")
    expect(watched.locator("svg.timeline rect")).not_to_have_count(0)
    heartbeat(app, alpha.token)
    expect(watched.locator("#summary .status")).to_have_text("Connected", timeout=LIVE)
    assert violations(watched) == []


def test_the_api_reference_page_is_styled_with_nothing_refused(watched: Page, live_server):
    watched.goto(live_server + "/api/docs")
    expect(watched.locator("h1")).to_be_visible()
    assert watched.evaluate("getComputedStyle(document.body).maxWidth") != "none"
    assert violations(watched) == []


def test_an_inline_script_slipped_into_the_page_does_not_run(watched: Page, live_server):
    log_in(watched, live_server, "viewer")
    watched.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
        }"""
    )
    assert watched.evaluate("window.injected === undefined")
    assert any(v.startswith("script-src") for v in violations(watched))
