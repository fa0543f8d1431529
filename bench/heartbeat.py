"""Benchmark: the heartbeat endpoint against its ceiling, under gunicorn and wrk.

    .venv/bin/python -m bench.heartbeat [--rounds 3] [--duration 10] [--devices 30000]
        [--connections 16] [--pace-ms 0] [--workers 5] [--threads 4] [--worker-class gthread]
        [--redis-socket]

Starts PostgreSQL (or uses DATABASE_URL) and Redis, seeds the fleet with known
tokens and serves three targets side by side with gunicorn (gthread; by default
the workers and threads gunicorn.conf.py gives this machine):

1. ceiling: bench/ceiling_app.py, the same essential work with psycopg directly;
2. pulseboard with its rate limits turned off;
3. pulseboard with the production limits (the defaults) on Redis;
4. pulseboard with its limits off and a telemetry sample due at every heartbeat
   (what used to be the slow path: token lookup, compare-and-set, sample insert).

Each is warmed up with devices of its own. Then, round after round, wrk drives
`POST /api/devices/heartbeat` at each target in turn, each round starting
with the next one (bench/heartbeat.lua rotates the tokens). On a shared
machine the speed drifts from minute to minute; interleaving the targets and
comparing each round's passes with each other keeps that drift out of the
ratios.

Prints, per target, the median over the rounds of req/s, p50, p99 and the
machine's CPU time per request (all processes: wrk, PostgreSQL, Redis and
gunicorn share the machine), its non-2xx answers and peak RSS per worker; then
the ratios, each the median of the rounds' ratios with their range. The
realistic mix (a steady fleet at the defaults: a heartbeat every 30 s, a sample
every 300 s, so one heartbeat in ten has a sample due) is computed from each
round's passes without and with a sample due: its time per request is the
weighted sum of theirs.
Driven flat out (the default), every target is saturated and its latency is
mostly the queue in front of it, so its p99 follows its throughput. With
`--pace-ms`, each connection waits after every answer, as devices paced by
their interval do: the offered load stays below every target's capacity and
the p99 measures the service itself.
Needs `wrk` (Debian package) and gunicorn.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.seeding import bench_token, migrated_app, postgres_database, seed
from tests import servers

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


WARM_UP_SECONDS = 5
WARM_UP_DEVICES = 5_000
# Longer than any run: the seeded devices' telemetry samples stay fresh, and
# every heartbeat measured takes the common path.
TELEMETRY_SAMPLE_SECONDS = 3600
# Shorter than any device's time between two heartbeats: every one samples.
SLOW_SAMPLE_SECONDS = 1
# At the defaults (HEARTBEAT_INTERVAL_SECONDS 30, TELEMETRY_SAMPLE_SECONDS 300).
SLOW_SHARE = 30 / 300


@dataclass
class Tokens:
    """Token files: the measured fleet, and devices of their own for the warm-up."""

    measured: Path
    warm_up: Path


@dataclass
class Target:
    name: str
    app: str
    env: dict[str, str]


@dataclass
class Pass:
    """One wrk run against one target."""

    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    non_2xx: int
    cpu_ms: float  # machine CPU time per request


@dataclass
class Server:
    process: subprocess.Popen
    port: int


@contextmanager
def gunicorn(target: Target, args: argparse.Namespace) -> Iterator[Server]:
    """gunicorn serving `target` on a free port, its workers booted and idle."""
    port = servers.free_port()
    command = [
        str(BIN / "gunicorn"),
        "--config", str(ROOT / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", args.worker_class,
        "--workers", str(args.workers),
        "--threads", str(args.threads),
        "--log-level", "warning",
        target.app,
    ]  # fmt: skip
    env = {**os.environ, **target.env}
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until_booted(process, target, args)
        yield Server(process, port)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def wait_until_booted(process: subprocess.Popen, target: Target, args: argparse.Namespace) -> None:
    # The master listens before its workers have imported the app: load sent
    # then would time the workers' start-up, not the requests.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if workers_idle(process.pid, args.workers):
            return
    raise RuntimeError(f"gunicorn for {target.name} did not start")


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
    env = {key: value for key, value in os.environ.items() if key != "WRK_PACE_MS"}
    if args.pace_ms:
        env["WRK_PACE_MS"] = str(args.pace_ms)
    return subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout


def machine_cpu_ticks() -> int:
    """CPU time the whole machine has spent working (not idle, not waiting), in clock ticks."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return user + nice + system + irq + softirq


def measure(server: Server, tokens: Path, args: argparse.Namespace) -> Pass:
    before = machine_cpu_ticks()
    output = run_wrk(server.port, args.duration, tokens, args)
    ticks = machine_cpu_ticks() - before
    if os.environ.get("BENCH_DEBUG"):
        print(output)
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return Pass(
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=int(re.search(r"P50_US (\d+)", output).group(1)) / 1000,
        p99_ms=int(re.search(r"P99_US (\d+)", output).group(1)) / 1000,
        non_2xx=int(re.search(r"NON2XX (\d+)", output).group(1)),
        cpu_ms=ticks * 1000 / os.sysconf("SC_CLK_TCK") / max(requests, 1),
    )


def measure_round(
    number: int, running: list[Server], tokens: Tokens, args: argparse.Namespace
) -> list[Pass]:
    """One pass per server, in target order; each round starts with the next target,
    so that whatever drifts within a round does not always land on the same one."""
    start = number % len(running)
    order = [*range(start, len(running)), *range(start)]
    passes = {index: measure(running[index], tokens.measured, args) for index in order}
    return [passes[index] for index in range(len(running))]


def median_of(passes: list[Pass], field: str) -> float:
    return statistics.median(getattr(p, field) for p in passes)


def report(
    targets: list[Target], rounds: list[list[Pass]], rss: list[float], args: argparse.Namespace
) -> None:
    print(f"{len(rounds)} rounds; medians over the rounds")
    print(
        f"{'target':<34} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'CPU ms/req':>10} {'non-2xx':>8} {'RSS MB':>7}"
    )
    for index, target in enumerate(targets):
        passes = [passes_of_round[index] for passes_of_round in rounds]
        print(
            f"{target.name:<34} {median_of(passes, 'rate'):>7.0f}"
            f" {median_of(passes, 'p50_ms'):>7.1f} {median_of(passes, 'p99_ms'):>7.1f}"
            f" {median_of(passes, 'cpu_ms'):>10.2f}"
            f" {sum(p.non_2xx for p in passes):>8} {rss[index]:>7.1f}"
        )
    for label, ratio in RATIOS:
        values = [ratio(*passes) for passes in rounds]
        print(
            f"{label + ':':<40} {statistics.median(values):.2f}"
            f"  (rounds: {min(values):.2f} to {max(values):.2f})"
        )
    print("targets: ratio >= 0.70; Redis limiter < 15 %; p99 < 50 ms at 16 connections;")
    print("         RSS per worker < 150 MB; realistic mix >= 0.60 of the ceiling;")
    print("         p99 at most 1.5x the ceiling's")
    if args.pace_ms:
        print(f"paced: each connection waited {args.pace_ms} ms after every answer, so the")
        print("       throughput ratios say only that every target kept up; read the p99s")
    print(f"realistic mix: {SLOW_SHARE:.0%} of heartbeats with a sample due (computed)")
    if any(p.non_2xx for passes in rounds for p in passes):
        print("note: some heartbeats were refused; seed more --devices for this rate")


def mix_rate(fast: Pass, slow: Pass) -> float:
    """Requests per second when SLOW_SHARE of them have a sample due and the rest none."""
    return 1 / ((1 - SLOW_SHARE) / fast.rate + SLOW_SHARE / slow.rate)


# Each from one round's passes: (ceiling, limits off, limits on Redis, sample due).
RATIOS = [
    ("heartbeat / ceiling, limits off", lambda top, off, on, slow: off.rate / top.rate),
    ("heartbeat / ceiling, limits on Redis", lambda top, off, on, slow: on.rate / top.rate),
    ("same by CPU per request, limits off", lambda top, off, on, slow: top.cpu_ms / off.cpu_ms),
    ("throughput cost of the Redis limiter", lambda top, off, on, slow: 1 - on.rate / off.rate),
    ("same by CPU per request", lambda top, off, on, slow: 1 - off.cpu_ms / on.cpu_ms),
    ("sample due / ceiling, limits off", lambda top, off, on, slow: slow.rate / top.rate),
    ("sample due / none due, limits off", lambda top, off, on, slow: slow.rate / off.rate),
    ("realistic mix / ceiling, limits off",
     lambda top, off, on, slow: mix_rate(off, slow) / top.rate),
    ("p99 / ceiling's p99, limits off", lambda top, off, on, slow: off.p99_ms / top.p99_ms),
    ("p99 / ceiling's p99, limits on Redis", lambda top, off, on, slow: on.p99_ms / top.p99_ms),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per pass")
    # Enough devices that none beats within the default 10 s minimum interval at
    # the rates measured here (about 1,200 a second): the limited pass must not
    # be timing cheap 429s.
    parser.add_argument("--devices", type=int, default=30_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--pace-ms",
        type=int,
        default=0,
        help="each connection waits this long after every answer (default: none, flat out)",
    )
    # gunicorn.conf.py's defaults for a machine with Redis.
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument(
        "--redis-socket",
        action="store_true",
        help="the limits on Redis reach it through its Unix socket, not TCP",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    redis = servers.start_redis()
    try:
        with postgres_database(os.environ.get("DATABASE_URL"), "pulseboard_bench") as url:
            run(url, redis.socket_url if args.redis_socket else redis.url, args)
    finally:
        redis.stop()


def run(url: str, redis_url: str, args: argparse.Namespace) -> None:
    app = migrated_app(url)
    with app.app_context():
        seed(args.devices + WARM_UP_DEVICES)
    with tempfile.TemporaryDirectory() as scratch:
        tokens = Tokens(Path(scratch) / "measured.txt", Path(scratch) / "warm-up.txt")
        write_tokens(tokens.measured, range(args.devices))
        write_tokens(tokens.warm_up, range(args.devices, args.devices + WARM_UP_DEVICES))
        with ExitStack() as stack:
            # Where gunicorn.conf.py keeps a local Pulseboard's metrics: in memory.
            metrics_dir = stack.enter_context(tempfile.TemporaryDirectory(dir=MEMORY_DIR))
            targets = bench_targets(url, redis_url, Path(metrics_dir))
            running = [stack.enter_context(gunicorn(target, args)) for target in targets]
            for server in running:
                # Connections, prepared statements, lazy imports.
                run_wrk(server.port, WARM_UP_SECONDS, tokens.warm_up, args)
            rounds = [measure_round(number, running, tokens, args) for number in range(args.rounds)]
            rss = [max(map(peak_rss_mb, worker_pids(s.process.pid))) for s in running]
        report(targets, rounds, rss, args)


MEMORY_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None


def bench_targets(url: str, redis_url: str, metrics_dir: Path) -> list[Target]:
    base = {
        "DATABASE_URL": url,
        "LOG_LEVEL": "INFO",
        "EMBEDDED_SWEEPER": "0",
        "TELEMETRY_SAMPLE_SECONDS": str(TELEMETRY_SAMPLE_SECONDS),
    }

    def metrics(name: str) -> dict[str, str]:
        return {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir / name)}

    return [
        # Each its own metrics directory: gunicorn.conf.py empties the one it is
        # given, and its default is the one a local Pulseboard uses.
        Target(
            "ceiling (psycopg, no framework)",
            "bench.ceiling_app:app",
            {**base, **metrics("ceiling")},
        ),
        Target(
            "pulseboard, limits off",
            "wsgi:app",
            {**base, **metrics("off"), "RATELIMIT_ENABLED": "0"},
        ),
        Target(
            "pulseboard, limits on Redis",
            "wsgi:app",
            {**base, **metrics("redis"), "REDIS_URL": redis_url},
        ),
        Target(
            "pulseboard, sample due, limits off",
            "wsgi:app",
            {
                **base,
                **metrics("slow"),
                "RATELIMIT_ENABLED": "0",
                "TELEMETRY_SAMPLE_SECONDS": str(SLOW_SAMPLE_SECONDS),
            },
        ),
    ]


def write_tokens(path: Path, devices: range) -> None:
    path.write_text("\n".join(bench_token(n) for n in devices) + "\n")


if __name__ == "__main__":
    main()
