"""Take the README's screenshot of the fleet page from a live demo fleet.

    .venv/bin/python -m docs.screenshot [--wait 100]

Starts `make run`'s launcher (server + simulator) on a free port with a scratch
SQLite database, waits for the fleet to show every tier, logs in with headless
Chromium (Debian's, nothing downloaded) and writes docs/fleet.png (1440 px, the
default view: problems first) and docs/fleet-phone.png (390 px). Run it as a
module from the repository root so that `tests.servers` imports.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.servers import CHROMIUM, CHROMIUM_ARGS, free_port

ROOT = Path(__file__).resolve().parent.parent


def shoot(url: str, path: Path, phone_path: Path) -> None:
    with sync_playwright() as playwright:
        chromium = playwright.chromium
        browser = chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/login")
        page.fill("input[name=email]", "admin@example.com")
        page.fill("input[name=password]", "pulseboard")
        page.click("button[type=submit]")
        page.wait_for_selector("table tbody tr")
        page.goto(f"{url}/")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(path))
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{url}/")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(phone_path))
        browser.close()


@contextmanager
def live_demo(wait: int) -> Iterator[str]:
    """`make run`'s launcher on a free port with a scratch database, `wait` seconds in: its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "PORT": str(port),
            "DEMO": "1",
            "DATABASE_URL": f"sqlite:///{scratch}/demo.sqlite3",
            "RUN_LOG_DIR": scratch,
        }
        launcher = subprocess.Popen(
            [sys.executable, "-m", "fleet.devserver"], cwd=ROOT, env=env, start_new_session=True
        )
        try:
            time.sleep(wait)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(launcher.pid, signal.SIGINT)
            launcher.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=int, default=100, help="seconds of simulated fleet first")
    args = parser.parse_args()
    with live_demo(args.wait) as url:
        docs = ROOT / "docs"
        shoot(url, docs / "fleet.png", docs / "fleet-phone.png")
    print(f"wrote {ROOT / 'docs' / 'fleet.png'} and fleet-phone.png")


if __name__ == "__main__":
    main()
