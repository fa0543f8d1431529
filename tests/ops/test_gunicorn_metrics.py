"""Metrics under gunicorn with several workers: every scrape reports every worker's counts."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_env
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 24


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "pulseboard_http_requests_total"
                and sample.labels.get("endpoint") == "ops.healthz"
            ):
                return sample.value
    return 0.0


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited early"
        try:
            fetch(url)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 30 s")


def start_gunicorn(sqlite_template, tmp_path, port: int) -> subprocess.Popen:
    database = tmp_path / "pulseboard.sqlite3"
    shutil.copy(sqlite_template, database)
    env = {
        **os.environ,
        **base_env(f"sqlite:///{database}"),
        "WEB_CONCURRENCY": "2",
        "EMBEDDED_SWEEPER": "0",
        "PULSEBOARD_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    return subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_it_sums_counters_over_all_gunicorn_workers(sqlite_template, tmp_path):
    port = free_port()
    process = start_gunicorn(sqlite_template, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/metrics", process)
        for _ in range(REQUESTS):
            fetch(f"{base}/healthz")
        counts = {healthz_count(fetch(f"{base}/metrics")) for _ in range(6)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert counts == {REQUESTS}


def test_gunicorn_takes_the_longest_url_the_api_document_allows(sqlite_template, tmp_path):
    """A search and a site of 200 four-byte characters each, percent-encoded: 4,800 bytes."""
    port = free_port()
    process = start_gunicorn(sqlite_template, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    longest = urllib.parse.quote("\U0001f4fa" * 200)
    try:
        wait_until_up(f"{base}/healthz", process)
        request = urllib.request.Request(f"{base}/api/admin/devices?q={longest}&site={longest}")
        try:
            urllib.request.urlopen(request, timeout=10)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert status == 401  # the API answered (no token), rather than gunicorn's 414
