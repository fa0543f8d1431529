"""The fleet grid's commands in a real browser: an operator sends one from a row and watches its
state change without a reload; reboot asks on the page; a viewer sees no menu and is refused."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.test_device_commands import command_count, post_from_page
from tests.browser.test_fleet_page import LIVE, heartbeat, log_in, row


def cell(page: Page, device):
    return row(page, device).locator(".c-command")


def test_an_operator_sends_a_command_from_a_row_and_sees_its_state_change(
    app, page: Page, live_server, make_device, artifacts
):
    alpha = make_device("alpha", site="Berlin")
    bravo = make_device("bravo", site="Berlin")
    log_in(page, live_server, "operator")
    cell(page, alpha).get_by_text("Commands").click()
    cell(page, alpha).get_by_role("button", name="Refresh content").click()
    expect(cell(page, alpha).locator(".grid-command")).to_have_text("refresh content · pending")
    expect(cell(page, bravo).locator(".grid-command")).to_have_count(0)

    [command] = heartbeat(app, alpha.token)["commands"]
    expect(cell(page, alpha).locator(".grid-command")).to_have_text(
        "refresh content · delivered", timeout=LIVE
    )
    heartbeat(app, alpha.token, acks=[{"id": command["id"], "result": "ok"}])
    expect(cell(page, alpha).locator(".grid-command")).to_have_text(
        "refresh content · ok", timeout=LIVE
    )
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=str(artifacts / "grid-commands.png"), full_page=True)


def test_a_reboot_from_a_row_is_sent_only_once_confirmed_on_the_page(
    app, page: Page, live_server, make_device
):
    alpha = make_device("alpha")
    log_in(page, live_server, "operator")
    cell(page, alpha).get_by_text("Commands").click()
    cell(page, alpha).get_by_text("Reboot…").click()
    expect(cell(page, alpha)).to_contain_text("Reboot alpha? It goes offline")
    assert command_count() == 0
    cell(page, alpha).get_by_role("button", name="Yes, reboot").click()
    expect(cell(page, alpha).locator(".grid-command")).to_have_text("reboot · pending")
    assert command_count() == 1


def test_a_viewer_sees_no_row_menu_and_the_server_refuses_a_post(
    app, page: Page, live_server, make_device
):
    alpha = make_device("alpha")
    log_in(page, live_server, "viewer")
    expect(cell(page, alpha)).to_have_text("—")
    expect(page.locator(".row-commands")).to_have_count(0)
    assert post_from_page(page, "/devices/alpha/commands/row", "kind=screenshot") == 403
    assert command_count() == 0


def test_an_operator_sends_a_command_to_a_filtered_view_after_confirming_it(
    app, page: Page, live_server, make_device, artifacts
):
    make_device("alpha", site="Berlin")
    make_device("bravo", site="Berlin")
    make_device("charlie", site="Paris")
    log_in(page, live_server, "operator", "/?site=Berlin")
    page.get_by_text("Send a command to all 2 matching…").click()
    page.locator(".bulk-commands select[name=kind]").select_option("refresh_content")
    assert command_count() == 0
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=str(artifacts / "bulk-commands.png"), full_page=True)
    page.get_by_role("button", name="Yes, send to 2").click()
    expect(page.locator("#bulk-result")).to_contain_text("Asked 2 devices to refresh their content")
    assert command_count() == 2
    expect(page.locator(".grid-command")).to_have_text(
        ["refresh content · pending"] * 2, timeout=LIVE
    )
