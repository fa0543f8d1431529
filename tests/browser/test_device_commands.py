"""The device page's commands in a real browser: an operator asks for a screenshot and sees it
arrive; reboot asks first; a viewer sees no menu and is refused by the server."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from clients.images import tiny_png
from fleet.extensions import db
from fleet.models import DeviceCommand
from tests.browser.test_fleet_page import LIVE, heartbeat, log_in


def command_count() -> int:
    count = db.session.scalar(select(func.count()).select_from(DeviceCommand))
    db.session.rollback()  # the next look sees what the server committed since
    return count


def post_from_page(page: Page, path: str, form: str) -> int:
    """The status of a form POST the page's own script sends, with the session's CSRF header."""
    headers = page.locator("body").get_attribute("hx-headers")
    return page.evaluate(
        """async ([path, form, headers]) => {
            const response = await fetch(path, {
                method: "POST",
                headers: {
                    ...JSON.parse(headers),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                body: form,
            });
            return response.status;
        }""",
        [path, form, headers],
    )


def test_an_operator_asks_for_a_screenshot_and_sees_it_without_a_reload(
    app, page: Page, live_server, make_device, artifacts
):
    kiosk = make_device("alpha", site="Berlin")
    log_in(page, live_server, "operator", "/devices/alpha")
    expect(page.locator(".no-screenshot")).to_be_visible()
    page.get_by_role("button", name="Screenshot").click()
    expect(page.locator("table.commands .command-state").first).to_have_text("pending")

    [command] = heartbeat(app, kiosk.token)["commands"]
    assert command["kind"] == "screenshot"
    uploaded = app.test_client().post(
        f"/api/devices/screenshots?command_id={command['id']}",
        data=tiny_png(),
        headers={"Authorization": f"Bearer {kiosk.token}", "Content-Type": "image/png"},
    )
    assert uploaded.status_code == 201
    heartbeat(app, kiosk.token, acks=[{"id": command["id"], "result": "ok"}])

    image = page.locator("figure.screenshot img")
    expect(image).to_be_visible(timeout=LIVE)
    expect(page.locator("table.commands .command-state").first).to_have_text("ok", timeout=LIVE)
    # The browser really decoded it: a broken image has no natural width.
    assert image.evaluate("img => img.naturalWidth") == 16
    page.screenshot(path=str(artifacts / "device-commands.png"), full_page=True)


def test_a_reboot_asks_first_and_a_refusal_sends_nothing(app, page: Page, live_server, make_device):
    make_device("alpha")
    log_in(page, live_server, "operator", "/devices/alpha")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Reboot").click()
    expect(page.get_by_text("No commands yet.")).to_be_visible()
    assert command_count() == 0

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Delay (s)").fill("30")
    page.get_by_role("button", name="Reboot").click()
    expect(page.locator("table.commands tbody tr").first).to_contain_text("after 30 s")


def test_a_viewer_sees_no_command_menu_and_the_server_refuses_a_post(
    app, page: Page, live_server, make_device
):
    make_device("alpha")
    log_in(page, live_server, "viewer", "/devices/alpha")
    expect(page.get_by_role("heading", name="Commands")).to_be_visible()
    expect(page.locator(".command-menu")).to_have_count(0)
    assert post_from_page(page, "/devices/alpha/commands", "kind=reboot") == 403
    assert command_count() == 0
