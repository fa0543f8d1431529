"""Benchmark: instructions per heartbeat, counted by valgrind, against the ceiling's and a budget.

    .venv/bin/python -m bench.instructions [--requests 200]    (exits 1 when over budget)

Throughput on a shared machine drifts by a fifth from one minute to the next
(see docs/benchmarks.md); the number of instructions a heartbeat executes does
not, so a change of one per cent shows. For each target (bench/ceiling_app.py,
Pulseboard with its limits off, Pulseboard with the production limits on Redis)
a process under `valgrind --tool=callgrind` sends heartbeats through the WSGI
app, with no HTTP server, and counts only those requests' instructions.

Counts user-space instructions of the app's process: not the kernel's (system
calls, context switches), not PostgreSQL's or Redis's, not gunicorn's. Needs
valgrind (Debian package); starts PostgreSQL and Redis itself.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from werkzeug.test import EnvironBuilder

from bench.seeding import bench_token, migrated_app, postgres_database, seed
from tests import servers

WARM_UP = 100
BODY = b'{"battery_level": 77, "wifi_strength": -60, "uptime_seconds": 1200}'
# Instructions per heartbeat this code may spend: the highest of four runs of
# 2026-12-02 (docs/benchmarks.md, remote commands), plus 2 %. The device app's
# hooks are the framework's own, so a change of Flask or an extension that makes
# them dearer shows here rather than in a test.
BUDGET = {"pulseboard, limits off": 851_000, "pulseboard, limits on Redis": 984_000}
TARGETS = [
    ("ceiling (psycopg, no framework)", "bench.ceiling_app:app", {}),
    ("pulseboard, limits off", "wsgi:app", {"RATELIMIT_ENABLED": "0"}),
    ("pulseboard, limits on Redis", "wsgi:app", {"REDIS_URL": None}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        send_heartbeats(args.child, args.requests)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    redis = servers.start_redis()
    try:
        with postgres_database(os.environ.get("DATABASE_URL"), "pulseboard_instructions") as url:
            app = migrated_app(url)
            with app.app_context():
                seed(WARM_UP + args.requests)
            report([count(target, url, redis.url, args.requests) for target in TARGETS])
    finally:
        redis.stop()


def count(target: tuple, url: str, redis_url: str, requests: int) -> tuple[str, int]:
    """(name, instructions per heartbeat) of one target, from a process under callgrind."""
    name, app, settings = target
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LOG_LEVEL": "WARNING",
        "EMBEDDED_SWEEPER": "0",
        # Every heartbeat counted takes the common path: no telemetry sample falls due.
        "TELEMETRY_SAMPLE_SECONDS": "3600",
        **{key: value or redis_url for key, value in settings.items()},
    }
    with tempfile.TemporaryDirectory() as scratch:
        # Metrics as under gunicorn: written to files shared by the workers.
        env["PROMETHEUS_MULTIPROC_DIR"] = scratch
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.instructions", "--child", app, "--requests", str(requests),
        ]  # fmt: skip
        child = subprocess.run(command, env=env, capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"{name}: the counting process failed:\n{child.stderr[-3000:]}")
        total = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
    return name, int(total.group(1)) // requests


def send_heartbeats(target: str, requests: int) -> None:
    """In the process under callgrind: warm up, then count `requests` heartbeats."""
    module, _, attribute = target.partition(":")
    app = getattr(importlib.import_module(module), attribute)
    environs = [heartbeat_environ(n) for n in range(WARM_UP + requests)]
    refused = []

    def start_response(status: str, _headers: list, _exc_info: object = None) -> None:
        if not status.startswith("200"):
            refused.append(status)

    def answer(environ: dict) -> None:
        for _chunk in app(environ, start_response):
            pass

    for environ in environs[:WARM_UP]:
        answer(environ)
    callgrind_control("on")
    for environ in environs[WARM_UP:]:
        answer(environ)
    callgrind_control("off")
    if refused:
        sys.exit(f"{target}: {len(refused)} heartbeats refused, first {refused[0]}")


def callgrind_control(instrumentation: str) -> None:
    subprocess.run(["callgrind_control", "-i", instrumentation, str(os.getpid())], check=True)


def heartbeat_environ(device: int) -> dict:
    return EnvironBuilder(
        path="/api/devices/heartbeat",
        method="POST",
        data=BODY,
        content_type="application/json",
        headers={"Authorization": f"Bearer {bench_token(device)}"},
    ).get_environ()


def report(counts: list[tuple[str, int]]) -> None:
    print(f"{'target':<34} {'instructions per heartbeat':>27}")
    for name, instructions in counts:
        print(f"{name:<34} {instructions:>27,}")
    (_, ceiling), (_, unlimited), (_, limited) = counts
    print(f"heartbeat / ceiling, limits off:        {ceiling / unlimited:.2f}")
    print(f"heartbeat / ceiling, limits on Redis:   {ceiling / limited:.2f}")
    print(f"cost of the Redis limiter:              {1 - unlimited / limited:.0%}")
    over = [name for name, instructions in counts if instructions > BUDGET.get(name, instructions)]
    for name in BUDGET:
        print(f"budget, {name + ':':<31} {BUDGET[name]:,}")
    if over:
        sys.exit(f"over budget: {', '.join(over)}")
    print("every target within its budget")


if __name__ == "__main__":
    main()
