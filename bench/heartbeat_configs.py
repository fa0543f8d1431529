"""Benchmark: the heartbeat's p99 under several gunicorn configurations, in the same run.

    .venv/bin/python -m bench.heartbeat_configs [--configs 5x4,9x1] [--rounds 7]
        [--duration 15] [--pace-ms 30] [--redis-socket]

Each configuration is `WORKERSxTHREADS` (gthread). For each one, the ceiling,
Pulseboard with its limits off and Pulseboard with the production limits on
Redis are served side by side (bench/heartbeat.py's targets, without the
sample-due one), and every round drives each server in turn, each round
starting with the next one. The ratios compare passes of the same
configuration and round, so what the machine does from minute to minute stays
out of them; comparing the configurations' absolute figures is only fair
because they share the rounds.

Prints per configuration the medians over the rounds of each target's p99 and
req/s, and the rounds' p99 ratios against that configuration's ceiling.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.heartbeat import (
    WARM_UP_DEVICES,
    WARM_UP_SECONDS,
    Pass,
    Server,
    Target,
    Tokens,
    bench_targets,
    gunicorn,
    measure,
    run_wrk,
    write_tokens,
)
from bench.seeding import migrated_app, postgres_database, seed
from tests import servers

# bench_targets' order: ceiling, limits off, limits on Redis, sample due.
COMPARED = (0, 1, 2)


@dataclass
class Configured:
    config: str
    target: Target
    args: argparse.Namespace
    server: Server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="5x4,9x1", help="WORKERSxTHREADS, comma-separated")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=int, default=15, help="seconds per pass")
    parser.add_argument("--devices", type=int, default=30_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pace-ms", type=int, default=30, help="0 drives every target flat out")
    parser.add_argument("--redis-socket", action="store_true")
    args = parser.parse_args()
    configs = args.configs.split(",")
    if not all(re.fullmatch(r"[1-9]\d*x[1-9]\d*", config) for config in configs):
        parser.error("--configs: each one WORKERSxTHREADS, such as 5x4")
    redis = servers.start_redis()
    try:
        with postgres_database(os.environ.get("DATABASE_URL"), "pulseboard_bench") as url:
            redis_url = redis.socket_url if args.redis_socket else redis.url
            rounds = run(url, redis_url, configs, args)
    finally:
        redis.stop()
    report(configs, rounds)


def run(
    url: str, redis_url: str, configs: list[str], args: argparse.Namespace
) -> list[dict[tuple[str, str], Pass]]:
    app = migrated_app(url)
    with app.app_context():
        seed(args.devices + WARM_UP_DEVICES)
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        tokens = Tokens(Path(scratch) / "measured.txt", Path(scratch) / "warm-up.txt")
        write_tokens(tokens.measured, range(args.devices))
        write_tokens(tokens.warm_up, range(args.devices, args.devices + WARM_UP_DEVICES))
        metrics_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(dir="/dev/shm")))
        running = []
        for number, config in enumerate(configs, start=1):
            workers, threads = (int(n) for n in config.split("x"))
            served = argparse.Namespace(
                **vars(args), workers=workers, threads=threads, worker_class="gthread"
            )
            # A Redis database per configuration: the passes reuse the same devices, and
            # one configuration's counts would limit the next one's heartbeats.
            targets = bench_targets(url, in_database(redis_url, number), metrics_dir / config)
            for index in COMPARED:
                server = stack.enter_context(gunicorn(targets[index], served))
                running.append(Configured(config, targets[index], served, server))
        for each in running:
            run_wrk(each.server.port, WARM_UP_SECONDS, tokens.warm_up, each.args)
        return [measure_round(number, running, tokens.measured) for number in range(args.rounds)]


def in_database(redis_url: str, number: int) -> str:
    """The URL with its database (both of tests.servers' forms end in it) replaced."""
    return redis_url.removesuffix("0") + str(number)


def measure_round(
    number: int, running: list[Configured], tokens: Path
) -> dict[tuple[str, str], Pass]:
    start = number % len(running)
    order = running[start:] + running[:start]
    return {
        (each.config, each.target.name): measure(each.server, tokens, each.args) for each in order
    }


def report(configs: list[str], rounds: list[dict[tuple[str, str], Pass]]) -> None:
    names = [target.name for target in bench_targets("", "", Path())]
    ceiling = names[0]
    print(f"{len(rounds)} rounds; medians over the rounds")
    for config in configs:
        print(f"\n{config} (workers x threads)")
        ceilings = [measured[config, ceiling] for measured in rounds]
        for index in COMPARED:
            passes = [measured[config, names[index]] for measured in rounds]
            line = (
                f"  {names[index]:<34} p99 {statistics.median(p.p99_ms for p in passes):6.1f} ms"
                f"  {statistics.median(p.rate for p in passes):6.0f} req/s"
                f"  {sum(p.non_2xx for p in passes):5} non-2xx"
            )
            if index:
                ratios = [p.p99_ms / top.p99_ms for p, top in zip(passes, ceilings, strict=True)]
                line += (
                    f"  p99 / ceiling's {statistics.median(ratios):.2f}"
                    f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
                )
            print(line)


if __name__ == "__main__":
    main()
