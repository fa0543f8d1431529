"""Take the availability screenshots from a live demo fleet with its week of history.

    .venv/bin/python -m docs.screenshot_availability [--wait 60]

Starts `make run`'s launcher on a free port with a scratch SQLite database,
waits for the simulator to enrol and the demo history to be written, logs in
with headless Chromium and writes docs/sites.png and docs/device-bars.png (1400
px wide) and docs/sites-phone.png and docs/device-bars-phone.png (390 px). The
device is the worst one of the worst site, so its bars have something to show.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from docs.screenshot import live_demo
from tests.servers import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WIDTHS = {"": (1400, 1000), "-phone": (390, 844)}


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", "pulseboard")
    page.click("button[type=submit]")
    page.wait_for_selector("table tbody tr")


def shoot(url: str) -> list[Path]:
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, url)
        page.goto(f"{url}/sites")
        device_path = page.locator("td.worst a").first.get_attribute("href")
        for suffix, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{url}/sites")
            page.wait_for_timeout(800)
            written.append(DOCS / f"sites{suffix}.png")
            page.screenshot(path=str(written[-1]))
            page.goto(f"{url}{device_path}")
            page.wait_for_timeout(800)
            written.append(DOCS / f"device-bars{suffix}.png")
            page.locator("#availability").screenshot(path=str(written[-1]))
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=int, default=60, help="seconds of simulated fleet first")
    args = parser.parse_args()
    with live_demo(args.wait) as url:
        written = shoot(url)
    print("wrote " + ", ".join(str(path.relative_to(ROOT)) for path in written))


if __name__ == "__main__":
    main()
