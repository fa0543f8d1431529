"""Pulseboard's external ping service: checks devices whose heartbeat went stale.

A standalone program: it talks to the Pulseboard server only over HTTP, with a
service token holding the `ping` scope, and imports nothing from the server's
packages (the standard library is all it needs). Each cycle it

1. asks the server for a page of devices needing a ping (stale heartbeat, not
   pinged recently), with each device's last known address;
2. checks every device on the page concurrently: a TCP connect to `--port`, and,
   with `--health-path`, an HTTP GET of that path (any HTTP answer counts as
   reachable; a refused connection or a timeout as unreachable);
3. posts the page's results in one batch, then fetches the next page;

and writes one JSON line per cycle to stdout. It backs off on 429 and 5xx
(honouring `Retry-After`) and on connection errors, and a failed cycle is
logged and followed by the next one: the server being down stops nothing.

    python clients/ping_service.py --server http://127.0.0.1:5000 --token pbs_... --port 22
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TextIO

NEEDING_PING = "/api/admin/external/devices-needing-ping"
PING_BATCH = "/api/admin/external/ping-batch"
MAX_BATCH = 500
USER_AGENT = "pulseboard-ping-service/1"


@dataclass(frozen=True)
class Settings:
    server: str
    token: str
    concurrency: int = 32
    interval: float = 30.0
    once: bool = False
    cycles: int | None = None
    port: int = 80
    health_path: str | None = None
    timeout: float = 2.0
    batch_size: int = MAX_BATCH
    server_timeout: float = 10.0
    max_retries: int = 5
    max_backoff: float = 60.0


def _env_default(env: Mapping[str, str], name: str, default: Any) -> Any:
    value = env.get(name, "").strip()
    return value if value else default


def parse_settings(argv: list[str] | None, env: Mapping[str, str]) -> Settings:
    """Settings from flags, each defaulting to an environment variable."""
    parser = argparse.ArgumentParser(
        prog="ping_service", description="Ping Pulseboard devices whose heartbeat went stale."
    )
    add = parser.add_argument

    def option(flag: str, env_name: str, default: Any, kind: Callable = str, **kw: Any) -> None:
        value = _env_default(env, env_name, default)
        add(flag, type=kind, default=None if value is None else kind(value), **kw)

    option("--server", "PULSEBOARD_URL", "http://127.0.0.1:5000", help="server base URL")
    option("--token", "PULSEBOARD_TOKEN", None, help="service token with the ping scope")
    option("--concurrency", "PING_CONCURRENCY", 32, int, help="checks run at once")
    option("--interval", "PING_INTERVAL", 30.0, float, help="seconds between cycles")
    option("--port", "PING_PORT", 80, int, help="device port to connect to")
    option("--health-path", "PING_HEALTH_PATH", None, help="also GET this HTTP path")
    option("--timeout", "PING_TIMEOUT", 2.0, float, help="seconds per check step")
    option("--batch-size", "PING_BATCH_SIZE", MAX_BATCH, int, help="devices per page and post")
    option("--max-retries", "PING_MAX_RETRIES", 5, int, help="retries per server request")
    option("--max-backoff", "PING_MAX_BACKOFF", 60.0, float, help="longest wait, in seconds")
    add("--once", action="store_true", help="run one cycle and exit (status 1 if it failed)")
    add("--cycles", type=int, default=None, help="run this many cycles and exit")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a service token is required (--token or PULSEBOARD_TOKEN)")
    if args.concurrency < 1 or args.timeout <= 0 or not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(f"need --concurrency >= 1, --timeout > 0, 1 <= --batch-size <= {MAX_BATCH}")
    return Settings(
        server=args.server.rstrip("/"),
        token=args.token,
        concurrency=args.concurrency,
        interval=args.interval,
        once=args.once,
        cycles=1 if args.once else args.cycles,
        port=args.port,
        health_path=args.health_path,
        timeout=args.timeout,
        batch_size=args.batch_size,
        max_retries=args.max_retries,
        max_backoff=args.max_backoff,
    )


# --- talking to the server ---------------------------------------------------------


class ServerUnavailable(Exception):
    """The server could not be reached, or kept answering 429/5xx through every retry."""


class ServerRefused(Exception):
    """The server refused the request (401, 403, 422, ...): retrying will not help."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) as seconds to wait, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class Api:
    """A small JSON client for the admin API that retries what is worth retrying."""

    def __init__(self, settings: Settings, wait: Callable[[float], Any] = time.sleep) -> None:
        self.settings = settings
        self.wait = wait
        self.retries = 0

    def call(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        """The decoded JSON answer; retries 429, 5xx and connection errors with backoff."""
        url = self.settings.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        problem = "no attempt made"
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                self.retries += 1
            try:
                return self._send(method, url, body)
            except urllib.error.HTTPError as error:
                problem, delay = self._judge_http_error(error)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                problem = f"cannot reach the server: {getattr(error, 'reason', error)}"
                delay = None
            except ValueError:  # a 200 that is not JSON: a proxy's page, say
                problem, delay = "the server answered something that is not JSON", None
            if attempt < self.settings.max_retries:
                self.wait(self._backoff(attempt, delay))
        raise ServerUnavailable(problem)

    def _send(self, method: str, url: str, body: Any) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.settings.token}")
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=self.settings.server_timeout) as response:
            return json.loads(response.read() or b"null")

    def _judge_http_error(self, error: urllib.error.HTTPError) -> tuple[str, float | None]:
        detail = _error_message(error)
        if error.code == 429 or error.code >= 500:
            return f"server answered {error.code}: {detail}", retry_after_seconds(
                error.headers.get("Retry-After")
            )
        raise ServerRefused(f"server answered {error.code}: {detail}") from None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.settings.max_backoff)
        # Exponential with jitter, so many ping services do not return in step.
        return min(self.settings.max_backoff, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read())["error"]["message"]
    except Exception:  # any body at all; the status code says enough
        return error.reason or "no detail"


# --- checking devices ---------------------------------------------------------------


def check_device(address: str, settings: Settings) -> tuple[bool, float | None]:
    """(reachable, latency in ms): TCP connect, then the HTTP GET if a health path is set."""
    started = time.perf_counter()
    try:
        if settings.health_path:
            _http_get(address, settings)
        else:
            with socket.create_connection((address, settings.port), timeout=settings.timeout):
                pass
    except (OSError, http.client.HTTPException):
        return False, None
    return True, round((time.perf_counter() - started) * 1000, 2)


def _http_get(address: str, settings: Settings) -> None:
    # Any HTTP answer (even a 500) proves the device is up; only silence or a refusal fails.
    connection = http.client.HTTPConnection(address, settings.port, timeout=settings.timeout)
    try:
        connection.request("GET", settings.health_path, headers={"User-Agent": USER_AGENT})
        connection.getresponse().read(1024)
    finally:
        connection.close()


def check_page(targets: list[dict], settings: Settings, pool: ThreadPoolExecutor) -> list[dict]:
    """One result per target, checked concurrently."""

    def check(target: dict) -> dict:
        reachable, latency = check_device(target["address"], settings)
        checked_at = datetime.now(UTC).isoformat()
        return {
            "uid": target["uid"],
            "reachable": reachable,
            "latency_ms": latency,
            "checked_at": checked_at,
        }

    return list(pool.map(check, targets))


# --- one cycle ------------------------------------------------------------------------


def run_cycle(api: Api, settings: Settings, pool: ThreadPoolExecutor) -> dict[str, Any]:
    """Fetch, check and report every device needing a ping; returns the cycle's figures."""
    started = time.perf_counter()
    api.retries = 0
    tally: Counter[str] = Counter()
    error = None
    try:
        after = None
        while True:
            query = {"limit": settings.batch_size, **({"after": after} if after else {})}
            page = api.call("GET", NEEDING_PING, query=query)
            if not isinstance(page, dict) or "items" not in page:
                raise ServerUnavailable("the server's answer has no list of devices")
            if page["items"]:
                _report(api, check_page(page["items"], settings, pool), tally)
            after = page.get("next_after")
            if after is None:
                break
    except (ServerUnavailable, ServerRefused) as failure:
        error = str(failure)
    return {
        "devices": tally["devices"],
        "reachable": tally["reachable"],
        "unreachable": tally["unreachable"],
        "applied": tally["applied"],
        "ignored": tally["ignored"],
        "rejected": tally["error"],
        "status_changes": tally["status_changes"],
        "retries": api.retries,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "ok": error is None,
        "error": error,
    }


def _report(api: Api, results: list[dict], tally: Counter[str]) -> None:
    tally["devices"] += len(results)
    tally["reachable"] += sum(result["reachable"] for result in results)
    tally["unreachable"] += sum(not result["reachable"] for result in results)
    answer = api.call("POST", PING_BATCH, body={"results": results})
    for item in answer["results"]:
        tally[item["outcome"]] += 1
        tally["status_changes"] += bool(item.get("status_changed"))


def log_line(out: TextIO, cycle: int, figures: dict[str, Any]) -> None:
    """One structured line per cycle."""
    line = {"ts": datetime.now(UTC).isoformat(), "event": "ping_cycle", "cycle": cycle, **figures}
    out.write(json.dumps(line) + "\n")
    out.flush()


def run(settings: Settings, out: TextIO = sys.stdout, stop: threading.Event | None = None) -> int:
    """Run cycles until stopped (or `cycles` are done); 1 if the last cycle failed."""
    stop = stop or threading.Event()
    api = Api(settings, wait=stop.wait)
    failures = 0
    cycle = 0
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        while not stop.is_set():
            cycle += 1
            figures = run_cycle(api, settings, pool)
            log_line(out, cycle, figures)
            failures = 0 if figures["ok"] else failures + 1
            if settings.cycles is not None and cycle >= settings.cycles:
                break
            # After failed cycles wait longer, up to max_backoff, so a down server is not hammered.
            pause = settings.interval * (2 ** min(failures, 6))
            stop.wait(min(pause, max(settings.interval, settings.max_backoff)))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse settings, stop cleanly on SIGTERM or Ctrl-C."""
    settings = parse_settings(argv, os.environ)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return run(settings, stop=stop)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
