"""Benchmark: how long a `flask` command takes to start, against bare Flask's in the same run.

    .venv/bin/python -m bench.cli_startup [--runs 7] [--compare OTHER_CHECKOUT]

Every `flask devices monitor-status` from cron and every operator command pays
the app's start-up before doing anything. Each round runs `flask --help`
(Flask alone), the same with the stack's four extensions bound and no
Pulseboard code (bench/stack_floor.py: the floor of any app on this stack),
and `flask --app wsgi --help` (Pulseboard's app built, every command
registered) one after the other, and reports the medians of wall
time and of CPU time (user + system, the figure a busy machine disturbs
least), and Pulseboard's cost above bare Flask. Targets: under 1 s wall,
under 0.5 s above bare Flask. `--compare` adds another checkout's
`flask --app wsgi --help` (an older commit, say, from `git worktree add`) to
each round, run by the same virtualenv: before and after in the same run (the
virtualenv must have that checkout's requirements too; a failed start stops the run).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).with_name("flask"))
TARGETS = {
    "bare flask --help": [FLASK, "--help"],
    "the stack's extensions": [FLASK, "--app", str(ROOT / "bench" / "stack_floor.py"), "--help"],
    "flask --app wsgi --help": [FLASK, "--app", str(ROOT / "wsgi.py"), "--help"],
}


def run_once(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    ran = subprocess.run(
        command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - started
    refuse_a_failed_start(command, ran.stderr.decode())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another checkout to time alongside")
    parser.add_argument(
        "--instructions", action="store_true", help="count each command's instructions (valgrind)"
    )
    args = parser.parse_args()
    targets = dict(TARGETS)
    if args.compare:
        targets[f"{args.compare.name}: --help"] = [
            FLASK,
            "--app",
            str(args.compare / "wsgi.py"),
            "--help",
        ]
    with tempfile.TemporaryDirectory() as scratch:
        # A database of its own, so that the run touches nothing of a real install.
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{scratch}/cli.sqlite3"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # A shell that sets this (some CI images do) recompiles every module on every run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        # Run from an empty folder: given no --app, flask would find our wsgi.py.
        for command in targets.values():
            run_once(command, env, scratch)  # warm the page cache and the bytecode files
        if args.instructions:
            report_instructions(
                {name: count_instructions(c, env, scratch) for name, c in targets.items()}
            )
            return
        for _ in range(args.runs):
            for name, command in targets.items():
                samples[name].append(run_once(command, env, scratch))
    report(samples)


def count_instructions(command: list[str], env: dict[str, str], cwd: str) -> int:
    """Instructions `command` executes, from start to exit, counted by callgrind."""
    counted = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    refuse_a_failed_start(command, counted.stderr)
    return int(re.search(r"Collected : (\d+)", counted.stderr).group(1))


def refuse_a_failed_start(command: list[str], stderr: str) -> None:
    # `flask --help` prints the app's import error and still exits 0: a checkout
    # whose requirements this virtualenv lacks would be timed failing fast.
    if "Traceback" in stderr:
        sys.exit(f"{' '.join(command)} failed to load its app:\n{stderr[-2000:]}")


def report_instructions(counts: dict[str, int]) -> None:
    """Instructions are what a busy machine does not change: a change of one per cent shows."""
    bare = next(iter(counts.values()))
    print(f"{'command':<26} {'instructions':>15} {'above bare Flask':>17}")
    for name, count in counts.items():
        print(f"{name:<26} {count:>15,} {count - bare:>17,}")


def report(samples: dict[str, list[tuple[float, float]]]) -> None:
    medians = {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in samples.items()
    }
    print(f"{'command':<26} {'wall (median)':>14} {'CPU (median)':>13} {'CPU (least)':>12}")
    for name, (wall, cpu) in medians.items():
        least = min(c for _, c in samples[name])
        print(f"{name:<26} {wall:>12.2f} s {cpu:>11.2f} s {least:>10.2f} s")
    (bare_wall, bare_cpu), (stack_wall, stack_cpu), (app_wall, app_cpu), *compared = (
        medians.values()
    )
    print(
        f"Pulseboard above bare Flask: {app_wall - bare_wall:.2f} s wall, "
        f"{app_cpu - bare_cpu:.2f} s CPU"
    )
    print(
        f"  of which the stack's extensions: {stack_wall - bare_wall:.2f} s wall; "
        f"Pulseboard's own code: {app_wall - stack_wall:.2f} s wall, "
        f"{app_cpu - stack_cpu:.2f} s CPU"
    )
    for other_wall, other_cpu in compared:
        print(
            f"the other checkout above bare Flask: {other_wall - bare_wall:.2f} s wall, "
            f"{other_cpu - bare_cpu:.2f} s CPU"
        )
    print("targets: under 1 s wall; under 0.5 s above bare Flask")


if __name__ == "__main__":
    main()
