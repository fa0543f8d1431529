"""The device page's timeline and charts: zoom, times on hover and focus, a text list."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect

from fleet.extensions import db
from fleet.services import heartbeats
from fleet.services.events import record_events, status_event
from fleet.timeutil import utcnow
from tests.browser.test_fleet_page import log_in
from tests.helpers import snapshot_of

CHANGES = 32


def flapping_device(make_device):
    """A device two hours old that changed status 32 times in the last 10 minutes."""
    now = utcnow().replace(microsecond=0)
    device = make_device("flappy", now=now - timedelta(hours=2))
    start = now - timedelta(minutes=10)
    tiers = ("connected", "temporarily_offline")
    record_events(
        [
            status_event(
                device.id,
                device.uid,
                tiers[n % 2],
                tiers[(n + 1) % 2],
                reason="test",
                source="system",
                now=start + timedelta(seconds=18 * n),
                age=None,
            )
            for n in range(CHANGES)
        ]
    )
    db.session.commit()
    for minutes in (50, 20):
        telemetry = heartbeats.Telemetry(battery_level=90 - minutes, wifi_strength=-60)
        heartbeats.record_heartbeat(
            snapshot_of(device.token), telemetry, now - timedelta(minutes=minutes)
        )
    return device


def test_at_one_hour_the_flapping_shows_as_stretches_with_their_times(
    page: Page, live_server, make_device
):
    flapping_device(make_device)
    log_in(page, live_server, "viewer", "/devices/flappy")
    page.get_by_role("link", name="1 h").click()
    expect(page).to_have_url(re.compile(r"span=1h"))
    stretches = page.locator("svg.timeline rect")
    expect(stretches).to_have_count(CHANGES + 1)
    # The 31 stretches between the changes fill the last sixth of the bar: visible, not a sliver.
    widths = stretches.evaluate_all("rects => rects.map(r => r.getBoundingClientRect().width)")
    assert min(widths[1:-1]) >= 3, widths

    # Keyboard: the bar is one tab stop on its newest stretch; the arrows walk back.
    stretches.last.focus()
    expect(page.locator("#timeline-readout")).to_contain_text("Connected")
    page.keyboard.press("ArrowLeft")
    expect(stretches.nth(CHANGES - 1)).to_be_focused()
    expect(page.locator("#timeline-readout")).to_have_text(
        re.compile(r"^Temporarily offline, \d\d:\d\d:\d\d \u2013 \d\d:\d\d:\d\d UTC \(18 s\)$")
    )
    # Pointer: the same label.
    stretches.nth(5).hover()
    expect(page.locator("#timeline-readout")).to_contain_text("(18 s)")

    # The text alternative lists every stretch.
    page.get_by_text("stretches as a list").click()
    expect(page.locator(".stretches li")).to_have_count(CHANGES + 1)
    expect(page.locator(".stretches li").nth(1)).to_contain_text("from")

    page.get_by_role("link", name="24 h").click()
    widths = stretches.evaluate_all("rects => rects.map(r => r.getBoundingClientRect().width)")
    assert min(widths[1:-1]) < 1  # at 24 h the same flapping is a sliver, hence the zoom


def test_the_charts_tell_each_samples_time_and_value_on_hover_and_focus(
    page: Page, live_server, make_device
):
    flapping_device(make_device)
    log_in(page, live_server, "viewer", "/devices/flappy?span=1h")
    marks = page.locator("svg.chart:has(.line-battery) .mark")
    expect(marks).to_have_count(2)
    marks.last.focus()
    expect(page.locator("#readout-battery")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d UTC: 70 %$"))
    page.keyboard.press("Home")
    expect(page.locator("#readout-battery")).to_contain_text("UTC: 40 %")
    page.locator("svg.chart:has(.line-wifi) .mark").first.hover()
    expect(page.locator("#readout-wifi")).to_contain_text("UTC: -60 dBm")
