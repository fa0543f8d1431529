"""The ping service, run for real: against a live server on this test's database,
with local listeners standing in for devices."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from clients import ping_service
from fleet.timeutil import utcnow
from tests.api.admin_support import service_token
from tests.helpers import device_row, events_of
from tests.servers import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "clients" / "ping_service.py"
UP, HUNG, CLOSED = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@contextmanager
def live_server(app) -> Iterator[str]:
    """The real app served over HTTP from a thread, on this test's database."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def listeners() -> Iterator[int]:
    """One port: a device answering HTTP on UP, one that accepts but never answers on HUNG,
    and nothing at all on CLOSED."""
    healthy = ThreadingHTTPServer((UP, 0), Healthy)
    port = healthy.server_address[1]
    hung = socket.socket()
    hung.bind((HUNG, port))
    hung.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
    thread = threading.Thread(target=healthy.serve_forever, daemon=True)
    thread.start()
    yield port
    healthy.shutdown()
    healthy.server_close()
    hung.close()


@pytest.fixture
def fleet(make_device):
    stale = utcnow() - timedelta(seconds=90)
    for uid, address in (("up", UP), ("hung", HUNG), ("closed", CLOSED)):
        make_device(uid, now=stale, last_address=address)
    make_device("fresh", last_address=UP)


def run_service(server: str, token: str, *args: str) -> tuple[int, list[dict]]:
    """Run the ping service as its own process, as an operator would."""
    process = subprocess.run(
        [sys.executable, str(SCRIPT), "--server", server, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert not process.stderr, process.stderr
    return process.returncode, [json.loads(line) for line in process.stdout.splitlines()]


def test_it_diagnoses_devices_by_tcp_connect(app, fleet, listeners):
    token = service_token("ping")
    with live_server(app) as server:
        code, lines = run_service(server, token, "--once", "--port", str(listeners))
    assert code == 0
    (line,) = lines
    assert line["event"] == "ping_cycle"
    assert {k: line[k] for k in ("devices", "reachable", "unreachable", "applied", "ok")} == {
        "devices": 3,
        "reachable": 2,
        "unreachable": 1,
        "applied": 3,
        "ok": True,
    }
    assert [device_row(uid).ping_reachable for uid in ("up", "hung", "closed")] == [
        True,
        True,
        False,
    ]
    assert device_row("up").ping_latency_ms >= 0
    assert [device_row(uid).status for uid in ("up", "hung", "closed")] == [
        "connected",
        "connected",
        "temporarily_offline",
    ]
    assert events_of("closed") == [("connected", "temporarily_offline", "external_service")]
    assert device_row("fresh").ping_received_at is None


def test_it_diagnoses_devices_by_http_health_check(app, fleet, listeners):
    token = service_token("ping")
    args = ("--once", "--port", str(listeners), "--health-path", "/health", "--timeout", "0.5")
    with live_server(app) as server:
        started = time.monotonic()
        code, (line,) = run_service(server, token, *args)
        elapsed = time.monotonic() - started
    assert code == 0
    assert (line["reachable"], line["unreachable"], line["status_changes"]) == (1, 2, 2)
    up, hung, closed = (device_row(uid) for uid in ("up", "hung", "closed"))
    assert (up.ping_reachable, hung.ping_reachable, closed.ping_reachable) == (True, False, False)
    assert (up.status, hung.status, closed.status) == (
        "connected",
        "temporarily_offline",
        "temporarily_offline",
    )
    assert hung.status_reason == "unreachable by external ping"
    assert elapsed < 10  # the hung device cost one timeout, not a stuck process
    assert device_row("fresh").status == "connected"


def test_a_second_run_pings_nobody_until_the_recheck_interval(app, fleet, listeners):
    token = service_token("ping")
    with live_server(app) as server:
        run_service(server, token, "--once", "--port", str(listeners))
        code, (line,) = run_service(server, token, "--once", "--port", str(listeners))
    assert (code, line["devices"], line["ok"]) == (0, 0, True)


def test_a_wrong_token_fails_the_cycle_without_retrying(app, fleet):
    with live_server(app) as server:
        code, (line,) = run_service(server, "pbs_wrong", "--once")
    assert (code, line["ok"], line["retries"]) == (1, False, 0)
    assert "401" in line["error"]


def test_it_imports_nothing_from_the_server():
    tree = ast.parse(SCRIPT.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert not imported & {"fleet", "api", "dashboard", "jobs", "clients", "tests"}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# --- backing off, against a misbehaving stand-in for the server ------------------------


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, headers, body)."""

    script: list[tuple[int, dict, dict]] = []
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        status, headers, body = self.script.pop(0)
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@contextmanager
def scripted_server(script, port=0) -> Iterator[str]:
    Scripted.script = list(script)
    Scripted.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", port), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


EMPTY = (200, {}, {"items": [], "next_after": None})
BUSY = {"error": {"code": "x", "message": "busy", "details": {}}}


def settings(server, **overrides):
    return ping_service.Settings(server=server, token="pbs_t", **{"max_backoff": 30, **overrides})


def test_it_honours_retry_after_on_429_and_backs_off_on_5xx():
    script = [(429, {"Retry-After": "7"}, BUSY), (503, {}, BUSY), (502, {}, {}), EMPTY]
    with scripted_server(script) as server:
        waits: list[float] = []
        api = ping_service.Api(settings(server), wait=waits.append)
        assert api.call("GET", ping_service.NEEDING_PING) == EMPTY[2]
    assert waits[0] == 7
    assert 0 < waits[1] <= 1 and 0 < waits[2] <= 2  # exponential with jitter
    assert api.retries == 3


def test_it_caps_a_long_retry_after():
    with scripted_server([(503, {"Retry-After": "3600"}, BUSY), EMPTY]) as server:
        waits: list[float] = []
        ping_service.Api(settings(server), wait=waits.append).call("GET", "/")
    assert waits == [30]


def test_it_gives_up_after_the_retries_and_says_why():
    with scripted_server([(503, {}, BUSY)] * 3) as server:
        api = ping_service.Api(settings(server, max_retries=2), wait=lambda _: None)
        with pytest.raises(ping_service.ServerUnavailable, match="503: busy"):
            api.call("GET", "/")


def test_it_reads_retry_after_as_an_http_date():
    assert ping_service.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert ping_service.retry_after_seconds("soon") is None


class Lines:
    def __init__(self):
        self.lines: list[dict] = []
        self.first = threading.Event()

    def write(self, text):
        self.lines.append(json.loads(text))
        self.first.set()

    def flush(self):
        pass


def test_it_survives_the_server_being_down_and_carries_on_when_it_returns():
    port = free_port()
    config = settings(
        f"http://127.0.0.1:{port}", cycles=2, interval=0.2, max_retries=0, max_backoff=1
    )
    out = Lines()
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(ping_service.run(config, out)))
    runner.start()
    assert out.first.wait(10)
    with scripted_server([EMPTY], port=port):
        runner.join(15)
    first, second = out.lines
    assert (first["ok"], second["ok"], codes) == (False, True, [0])
    assert "cannot reach the server" in first["error"]


def test_it_reads_its_settings_from_the_environment():
    env = {"PULSEBOARD_URL": "http://pb:8000/", "PULSEBOARD_TOKEN": "pbs_x", "PING_PORT": "22"}
    parsed = ping_service.parse_settings(["--concurrency", "4", "--once"], env)
    assert (parsed.server, parsed.token, parsed.port, parsed.concurrency, parsed.cycles) == (
        "http://pb:8000",
        "pbs_x",
        22,
        4,
        1,
    )


def test_it_refuses_to_start_without_a_token(capsys):
    with pytest.raises(SystemExit):
        ping_service.parse_settings([], {})
    assert "service token is required" in capsys.readouterr().err
