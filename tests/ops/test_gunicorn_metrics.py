"""Metrics under gunicorn with several workers: every scrape reports every worker's counts."""

import os
import shutil
import signal
import subprocess
import sys
import time
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


def test_it_sums_counters_over_all_gunicorn_workers(sqlite_template, tmp_path):
    database = tmp_path / "pulseboard.sqlite3"
    shutil.copy(sqlite_template, database)
    port = free_port()
    env = {
        **os.environ,
        **base_env(f"sqlite:///{database}"),
        "WEB_CONCURRENCY": "2",
        "EMBEDDED_SWEEPER": "0",
        "PULSEBOARD_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
