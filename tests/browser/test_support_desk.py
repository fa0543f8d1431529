"""The fleet page as a support desk uses it: problems first, the count in the tab, focus kept."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from fleet.extensions import db
from fleet.models import User
from fleet.services import users
from fleet.timeutil import utcnow
from tests.browser.test_fleet_page import LIVE, PASSWORD, heartbeat, log_in, row


def mixed_fleet(make_device):
    """Thirty healthy devices named to sort first, and three problems named to sort last."""
    now = utcnow()
    healthy = [make_device(f"a-kiosk-{n:02}", now=now) for n in range(30)]
    late = make_device("z-late", now=now, status="temporarily_offline", status_reason="late")
    gone = make_device(
        "z-gone", now=now - timedelta(hours=2), status="disconnected", status_reason="quiet"
    )
    gone_later = make_device(
        "z-gone-later", now=now - timedelta(minutes=20), status="disconnected", status_reason="q"
    )
    return healthy, late, gone, gone_later


def test_the_first_page_opens_on_the_problems_and_the_tab_counts_them(
    app, page: Page, live_server, make_device
):
    healthy, late, _gone, _gone_later = mixed_fleet(make_device)
    log_in(page, live_server, "viewer", "/?per_page=25")
    first = page.locator("#grid tbody tr").evaluate_all("rows => rows.map(r => r.dataset.uid)")
    assert first[:4] == ["z-gone", "z-gone-later", "z-late", healthy[0].uid]
    expect(page).to_have_title(re.compile(r"^3 need attention · Fleet"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Fleet")

    heartbeat(app, late.token)
    expect(page).to_have_title(re.compile(r"^2 need attention · Fleet"), timeout=LIVE)
    expect(page.locator("#announcer")).to_have_text("z-late connected")

    page.locator(".counter-attention").click()
    shown = page.locator("#grid tbody tr").evaluate_all("rows => rows.map(r => r.dataset.uid)")
    assert shown == ["z-gone", "z-gone-later"]


def test_a_poll_that_redraws_the_focused_row_keeps_the_focus(
    app, page: Page, live_server, make_device
):
    kiosk = make_device("kiosk-1", site="Berlin")
    log_in(page, live_server, "viewer")
    link = row(page, kiosk).get_by_role("link", name="kiosk-1")
    link.focus()
    heartbeat(app, kiosk.token, battery_level=20)  # far from its 100 %: a visible change
    expect(row(page, kiosk)).to_contain_text("20", timeout=LIVE)
    expect(row(page, kiosk).get_by_role("link", name="kiosk-1")).to_be_focused()


def test_a_skip_link_is_the_first_tab_stop_and_leads_to_the_content(
    page: Page, live_server, make_device
):
    make_device("kiosk-1")
    log_in(page, live_server, "viewer")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    skip.press("Enter")
    expect(page.locator("main")).to_be_focused()


LONG_UID = "kiosk-" + "terminal-" * 5 + "000000042"  # 60 characters, no natural break
LONG_SITE = "Hauptbahnhof-Nord-Untergeschoss-Verbindungsgang-Westseite-B2"


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_scrolls_sideways_on_a_phone_even_with_a_long_uid_and_site(
    page: Page, live_server, make_device
):
    assert (len(LONG_UID), len(LONG_SITE)) == (60, 60)
    silent = utcnow() - timedelta(hours=1)
    make_device(LONG_UID, now=silent, site=LONG_SITE, status="disconnected", status_reason="quiet")
    make_device("kiosk-2", site="Berlin")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "operator")
    for path in ("/", f"/devices/{LONG_UID}", "/events", f"/events?site={LONG_SITE}"):
        page.goto(live_server + path)
        expect(page.locator("main")).to_be_visible()
        assert page_width(page) <= 390, (path, page_width(page))


def test_a_reconnect_on_a_silent_device_says_it_waits_for_a_heartbeat_and_when_it_expires(
    page: Page, live_server, make_device
):
    silent = make_device(
        "quiet-1",
        now=utcnow() - timedelta(hours=1),
        status="disconnected",
        status_reason="no heartbeat",
    )
    log_in(page, live_server, "operator")
    row(page, silent).get_by_role("button", name="Reconnect").click()
    warning = row(page, silent).locator(".reconnect-wait")
    expect(warning).to_have_text(re.compile(r"Waits for its next heartbeat; expires at .+ UTC"))

    page.goto(f"{live_server}/devices/quiet-1")
    expect(page.locator("#summary .reconnect-wait")).to_contain_text("Waits for its next heartbeat")


def test_bulk_reconnect_is_offered_on_a_filtered_view_and_confirmed_on_the_page(
    page: Page, live_server, make_device
):
    make_device("kiosk-1", site="Berlin")
    make_device("kiosk-2", site="Paris")
    log_in(page, live_server, "operator")
    expect(page.get_by_text("Reconnect all")).to_have_count(0)
    page.goto(f"{live_server}/?site=Berlin")
    page.get_by_text("Reconnect all 1 matching…").click()
    page.get_by_role("button", name="Yes, reconnect 1").click()
    expect(page.locator(".counter-reconnect_pending .count")).to_have_text("1", timeout=LIVE)


def test_a_poll_after_the_session_ended_returns_to_the_filtered_view_after_logging_in(
    page: Page, live_server, make_device
):
    make_device("gone", status="disconnected", status_reason="quiet")
    log_in(page, live_server, "viewer", "/?status=disconnected&sort=uid")
    user_id = db.session.execute(select(User.id)).scalar_one()
    users.end_sessions(user_id)  # as a logout elsewhere, or a password change, would
    expect(page).to_have_url(re.compile(r"/login\?next="), timeout=LIVE)
    page.get_by_label("Email").fill("viewer@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/\?status=disconnected&sort=uid$"))


def test_the_counters_follow_a_reconnect_click_at_once_not_at_the_next_poll(
    page: Page, live_server, make_device
):
    kiosk = make_device("kiosk-1")
    log_in(page, live_server, "operator", "/?site=")
    pending = page.locator('[data-count="reconnect_pending"] .count')
    expect(pending).to_have_text("0")
    # No more polls: only the click's own answer can move the counter now.
    page.evaluate("document.getElementById('poller').remove()")
    row(page, kiosk).get_by_role("button", name="Reconnect").click()
    expect(pending).to_have_text("1", timeout=2000)
    expect(page).to_have_title(re.compile(r"^1 need attention · Fleet"))


def test_on_a_phone_the_filters_fold_behind_a_button_that_says_how_many_are_set(
    page: Page, live_server, make_device
):
    make_device("kiosk-1", site="Berlin")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "viewer", "/?site=Berlin&status=connected")
    toggle = page.get_by_role("button", name="Filters and sort (2 set)")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_label("Search")).to_be_hidden()
    expect(page.locator("#grid tbody tr").first).to_be_in_viewport()
    toggle.click()
    expect(page.get_by_label("Search")).to_be_visible()
    page.set_viewport_size({"width": 1400, "height": 900})
    expect(toggle).to_be_hidden()
    expect(page.get_by_label("Search")).to_be_visible()
