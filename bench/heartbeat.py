"""Benchmark: the heartbeat endpoint against its ceiling, under gunicorn and wrk.

    .venv/bin/python -m bench.heartbeat [--devices 30000] [--duration 15]
        [--connections 16] [--workers 5] [--threads 4]

Starts PostgreSQL (or uses DATABASE_URL) and Redis, seeds the fleet with known
tokens, then for each target serves it with gunicorn (gthread; by default the
workers and threads gunicorn.conf.py gives this machine) and drives
`POST /api/devices/heartbeat` with wrk (bench/heartbeat.lua rotates the tokens):

1. ceiling: bench/ceiling_app.py, the same essential work with psycopg directly;
2. pulseboard with its rate limits turned off;
3. pulseboard with the production limits (the defaults) on Redis.

Each target is warmed up first with devices of its own, so that no device the
measured run sends has beaten within its minimum interval.

Prints req/s, p50, p99, non-2xx answers and peak RSS per worker, and the ratios.
Needs `wrk` (Debian package) and gunicorn.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.seeding import bench_token, migrated_app, postgres_database, seed
from tests import servers

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


WARM_UP_SECONDS = 5
WARM_UP_DEVICES = 5_000


@dataclass
class Tokens:
    """Token files: the measured fleet, and devices of their own for the warm-up."""

    measured: Path
    warm_up: Path


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    peak_rss_mb: float


def gunicorn(target: str, env: dict[str, str], args: argparse.Namespace) -> tuple:
    """Start gunicorn on a free port; returns (process, port)."""
    port = servers.free_port()
    command = [
        str(BIN / "gunicorn"),
        "--config", str(ROOT / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread",
        "--workers", str(args.workers),
        "--threads", str(args.threads),
        "--log-level", "warning",
        target,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    # The master listens before its workers have imported the app: load sent
    # then would time the workers' start-up, not the requests.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if workers_idle(process.pid, args.workers):
            return process, port
    process.kill()
    raise RuntimeError(f"gunicorn for {target} did not start")


def workers_idle(master: int, expected: int) -> bool:
    """True when all `expected` workers are up and used no CPU for half a second."""
    before = cpu_ticks(master)
    time.sleep(0.5)
    pids = worker_pids(master)
    return len(pids) == expected and cpu_ticks(master) == before


def cpu_ticks(master: int) -> int:
    """CPU time (user + system, in clock ticks) of the master's workers so far."""
    total = 0
    for pid in worker_pids(master):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_wrk(port: int, seconds: int, tokens: Path, args: argparse.Namespace) -> str:
    command = [
        "wrk", "-t2", f"-c{args.connections}", f"-d{seconds}s", "--latency",
        "-s", str(ROOT / "bench" / "heartbeat.lua"), f"http://127.0.0.1:{port}", "--", str(tokens),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def measure(name: str, target: str, env: dict, tokens: Tokens, args: argparse.Namespace) -> Result:
    process, port = gunicorn(target, env, args)
    try:
        # Warm-up: connections, prepared statements, lazy imports.
        run_wrk(port, WARM_UP_SECONDS, tokens.warm_up, args)
        output = run_wrk(port, args.duration, tokens.measured, args)
        if os.environ.get("BENCH_DEBUG"):
            print(output)
        rss = max(peak_rss_mb(pid) for pid in worker_pids(process.pid))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    return Result(
        name=name,
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=int(re.search(r"P50_US (\d+)", output).group(1)) / 1000,
        p99_ms=int(re.search(r"P99_US (\d+)", output).group(1)) / 1000,
        non_2xx=int(re.search(r"NON2XX (\d+)", output).group(1)),
        peak_rss_mb=rss,
    )


def report(results: list[Result]) -> None:
    print(f"{'target':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'RSS MB':>7}")
    for r in results:
        print(
            f"{r.name:<34} {r.requests_per_second:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f}"
            f" {r.non_2xx:>8} {r.peak_rss_mb:>7.1f}"
        )
    ceiling, unlimited, limited = results
    top = ceiling.requests_per_second
    print(f"heartbeat / ceiling, limits off:        {unlimited.requests_per_second / top:.2f}")
    print(f"heartbeat / ceiling, limits on Redis:   {limited.requests_per_second / top:.2f}")
    cost = 1 - limited.requests_per_second / unlimited.requests_per_second
    print(f"throughput cost of the Redis limiter:   {cost:.0%}  (target < 15%)")
    print("targets: ratio >= 0.70; p99 < 50 ms at 16 connections; RSS per worker < 150 MB")
    if limited.non_2xx:
        print("note: the limited pass refused heartbeats; seed more --devices for this rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Enough devices that none beats within the default 10 s minimum interval at
    # the rates measured here (about 1,200 a second): the limited pass must not
    # be timing cheap 429s.
    parser.add_argument("--devices", type=int, default=30_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    # gunicorn.conf.py's defaults for a machine with Redis.
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    redis = servers.start_redis()
    try:
        with postgres_database(os.environ.get("DATABASE_URL"), "pulseboard_bench") as url:
            report(run(url, redis.url, args))
    finally:
        redis.stop()


def run(url: str, redis_url: str, args: argparse.Namespace) -> list[Result]:
    app = migrated_app(url)
    with app.app_context():
        seed(args.devices + WARM_UP_DEVICES)
    with tempfile.TemporaryDirectory() as scratch:
        tokens = Tokens(Path(scratch) / "measured.txt", Path(scratch) / "warm-up.txt")
        write_tokens(tokens.measured, range(args.devices))
        write_tokens(tokens.warm_up, range(args.devices, args.devices + WARM_UP_DEVICES))
        base = {
            "DATABASE_URL": url,
            "LOG_LEVEL": "INFO",
            "EMBEDDED_SWEEPER": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(Path(scratch) / "metrics"),
        }
        return [
            measure("ceiling (psycopg, no framework)", "bench.ceiling_app:app", base, tokens, args),
            measure(
                "pulseboard, limits off",
                "wsgi:app",
                {**base, "RATELIMIT_ENABLED": "0"},
                tokens,
                args,
            ),
            measure(
                "pulseboard, limits on Redis",
                "wsgi:app",
                {**base, "REDIS_URL": redis_url},
                tokens,
                args,
            ),
        ]


def write_tokens(path: Path, devices: range) -> None:
    path.write_text("\n".join(bench_token(n) for n in devices) + "\n")


if __name__ == "__main__":
    main()
