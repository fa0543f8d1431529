"""Benchmark: the heartbeat endpoint against its ceiling, under gunicorn and wrk.

    .venv/bin/python -m bench.heartbeat [--devices 10000] [--duration 15]
        [--connections 16] [--workers 4] [--threads 4]

Starts PostgreSQL (or uses DATABASE_URL) and Redis, seeds the fleet with known
tokens, then for each target serves it with gunicorn and drives
`POST /api/devices/heartbeat` with wrk (bench/heartbeat.lua rotates the tokens):

1. ceiling: bench/ceiling_app.py, the same essential work with psycopg directly;
2. pulseboard, with the rate limits in memory and set out of the way;
3. pulseboard, with the production shape of limits (two limits per device) on Redis.

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
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread",
        "--workers", str(args.workers),
        "--threads", str(args.threads),
        "--log-level", "warning",
        target,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            servers.socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gunicorn for {target} did not start")


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


def measure(name: str, target: str, env: dict, tokens: Path, args: argparse.Namespace) -> Result:
    process, port = gunicorn(target, env, args)
    try:
        run_wrk(port, 3, tokens, args)  # warm-up: connections, caches, JIT-free but lazy imports
        output = run_wrk(port, args.duration, tokens, args)
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
    ceiling, memory, redis = results
    top = ceiling.requests_per_second
    print(f"heartbeat / ceiling, limits in memory:  {memory.requests_per_second / top:.2f}")
    print(f"heartbeat / ceiling, limits on Redis:   {redis.requests_per_second / top:.2f}")
    cost = 1 - redis.requests_per_second / memory.requests_per_second
    print(f"throughput cost of the Redis limiter:   {cost:.0%}  (target < 15%)")
    print("targets: ratio >= 0.70; p99 < 50 ms at 16 connections; RSS per worker < 150 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
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
        seed(args.devices)
    with tempfile.TemporaryDirectory() as scratch:
        tokens = Path(scratch) / "tokens.txt"
        tokens.write_text("\n".join(bench_token(n) for n in range(args.devices)) + "\n")
        base = {
            "DATABASE_URL": url,
            "LOG_LEVEL": "WARNING",
            "EMBEDDED_SWEEPER": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(Path(scratch) / "metrics"),
        }
        out_of_the_way = {
            "HEARTBEAT_MIN_INTERVAL_SECONDS": "0",
            "HEARTBEAT_MAX_PER_MINUTE": "1000000",
        }
        # Two limits per device as in production, loose enough that a 10,000-device
        # rotation at this rate is not refused: the cost measured is the limiter's.
        production_shape = {"HEARTBEAT_MIN_INTERVAL_SECONDS": "1", "HEARTBEAT_MAX_PER_MINUTE": "60"}
        return [
            measure("ceiling (psycopg, no framework)", "bench.ceiling_app:app", base, tokens, args),
            measure(
                "pulseboard, limits in memory", "wsgi:app", {**base, **out_of_the_way}, tokens, args
            ),
            measure(
                "pulseboard, limits on Redis",
                "wsgi:app",
                {**base, **production_shape, "REDIS_URL": redis_url},
                tokens,
                args,
            ),
        ]


if __name__ == "__main__":
    main()
