"""The Alerts and channels pages in a real browser: Acknowledge, and Send test's outcome."""

from __future__ import annotations

import threading
from datetime import timedelta

from playwright.sync_api import Page, expect

from fleet.services.alerts import channels, outbox, ruleset
from fleet.services.alerts.ruleset import RuleSpec
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.browser.test_fleet_page import LIVE, log_in


def test_an_operator_acknowledges_an_incident_with_a_note(
    app, page: Page, live_server, make_device, receiver
):
    start = utcnow() - timedelta(seconds=400)
    make_device("kiosk-7", now=start, site="lobby")
    channels.add_channel("hook", receiver.url(), "admin", start)
    ruleset.add_rule(RuleSpec(name="down", kind="disconnected", channels=("hook",)), "admin", start)
    enforce_timeouts(utcnow())
    log_in(page, live_server, "operator", "/alerts")
    incident = page.locator(".incident").first
    expect(incident).to_contain_text("kiosk-7 disconnected")
    expect(incident.locator(".incident-state")).to_have_text("open")
    incident.get_by_label("Note").fill("calling the store")
    incident.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".incident-state").first).to_have_text("acknowledged")
    expect(page.locator(".incident").first).to_contain_text("calling the store")


def test_send_test_shows_the_delivery_once_the_worker_sent_it(
    app, page: Page, live_server, receiver
):
    channels.add_channel("hook", receiver.url(), "admin", utcnow())
    log_in(page, live_server, "admin", "/alerts/channels")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".test-result")).to_contain_text("waiting for the delivery worker")

    def worker() -> None:
        with app.app_context():
            outbox.deliver_due(utcnow())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    expect(page.locator(".test-result")).to_have_text("Delivered.", timeout=LIVE)
    assert len(receiver.received) == 1
