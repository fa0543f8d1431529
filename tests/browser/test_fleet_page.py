"""The dashboard in a real browser: login, live updates, reconnect, URL filters, roles."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect

from fleet.services import users
from fleet.timeutil import utcnow

PASSWORD = "correct horse battery"
LIVE = 15_000  # ms: a poll every 3 s, plus a heartbeat's few seconds of slack


def log_in(page: Page, base: str, role: str, path: str = "/") -> None:
    email = f"{role}@example.com"
    users.create_user(email, PASSWORD, role, utcnow())
    page.goto(base + path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def three_tiers(make_device):
    old = utcnow() - timedelta(minutes=30)
    return (
        make_device("alpha", site="Berlin", name="Lobby screen"),
        make_device("bravo", site="Paris", status="temporarily_offline", status_reason="late"),
        make_device(
            "charlie", now=old, site="Paris", status="disconnected", status_reason="gone quiet"
        ),
    )


def heartbeat(app, token: str, **body) -> dict:
    response = app.test_client().post(
        "/api/devices/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.json
    return response.json


def row(page: Page, device):
    return page.locator(f"#device-{device.id}")


def test_it_shows_the_tiers_and_a_status_change_without_a_reload(
    app, page: Page, live_server, make_device, artifacts
):
    alpha, bravo, charlie = three_tiers(make_device)
    log_in(page, live_server, "viewer")
    expect(row(page, alpha).locator(".status")).to_have_text("Connected")
    expect(row(page, bravo).locator(".status")).to_have_text("Temporarily offline")
    expect(row(page, charlie).locator(".status")).to_have_text("Disconnected")
    expect(row(page, charlie)).to_contain_text("gone quiet")
    expect(page.locator(".counter-disconnected .count")).to_have_text("1")
    expect(row(page, alpha).locator("time.ago").first).to_have_text(re.compile(r"ago|just now"))
    page.screenshot(path=str(artifacts / "fleet.png"), full_page=True)

    heartbeat(app, charlie.token, battery_level=55)
    expect(row(page, charlie).locator(".status")).to_have_text("Connected", timeout=LIVE)
    expect(row(page, charlie)).to_contain_text("55")
    expect(page.locator(".counter-disconnected .count")).to_have_text("0")
    expect(page.locator(".counter-connected .count")).to_have_text("2")


def test_it_shows_a_reconnect_pending_then_delivered(app, page: Page, live_server, make_device):
    alpha = make_device("alpha", site="Berlin")
    log_in(page, live_server, "operator")
    row(page, alpha).get_by_role("button", name="Reconnect").click()
    expect(row(page, alpha).locator(".reconnect")).to_have_text("pending")
    expect(page.locator(".counter-reconnect_pending .count")).to_have_text("1", timeout=LIVE)

    answer = heartbeat(app, alpha.token)
    assert answer["should_reconnect"] is True
    expect(row(page, alpha).locator(".reconnect")).to_have_text("delivered", timeout=LIVE)
    expect(page.locator(".counter-reconnect_pending .count")).to_have_text("0")


def test_it_keeps_a_url_filter_through_a_reload(page: Page, live_server, make_device):
    alpha, _, charlie = three_tiers(make_device)
    log_in(page, live_server, "viewer", "/?status=disconnected")
    expect(page).to_have_url(re.compile(r"/\?status=disconnected$"))
    expect(page.locator("tr.device-row")).to_have_count(1)
    page.reload()
    expect(page.locator("tr.device-row")).to_have_count(1)
    expect(row(page, charlie)).to_be_visible()
    page.locator("select[name=status]").select_option("connected")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status=connected"))
    expect(row(page, alpha)).to_be_visible()
    expect(page.locator("tr.device-row")).to_have_count(1)


def test_it_shows_no_reconnect_button_to_a_viewer(page: Page, live_server, make_device):
    alpha = make_device("alpha")
    log_in(page, live_server, "viewer")
    expect(row(page, alpha)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Reconnect"))).to_have_count(0)


def test_it_draws_the_device_page(app, page: Page, live_server, make_device, artifacts):
    now = utcnow()
    alpha = make_device("alpha", now=now - timedelta(hours=3), site="Berlin", name="Lobby")
    heartbeat(app, alpha.token, battery_level=76, wifi_strength=-61)
    log_in(page, live_server, "admin", "/devices/alpha")
    expect(page.locator("#summary .status")).to_have_text("Connected")
    expect(page.locator("svg.timeline rect")).not_to_have_count(0)
    expect(page.get_by_label("Disconnect after (s)")).to_be_visible()
    page.screenshot(path=str(artifacts / "device.png"), full_page=True)


def test_a_refused_click_says_so_instead_of_doing_nothing(
    app, page: Page, live_server, make_device
):
    from sqlalchemy import text

    from fleet.extensions import db

    alpha, _, _ = three_tiers(make_device)
    button = row(page, alpha).get_by_role("button", name="Reconnect")
    log_in(page, live_server, "operator")
    # Someone removes the device while the page is open: the click gets a 404.
    db.session.execute(text("DELETE FROM device WHERE uid = 'alpha'"))
    db.session.commit()
    button.click()
    expect(page.get_by_role("alert")).to_contain_text("did not work (HTTP 404)")
