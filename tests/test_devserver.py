"""`make run`'s launcher: its settings, and that Ctrl-C leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fleet.config import ConfigError
from fleet.devserver import DEMO_SERVER_ENV, admin_outcome, child_env, run_settings
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_it_runs_the_demo_with_short_thresholds_by_default():
    settings = run_settings({})
    env = child_env(settings, {})
    assert settings.demo and settings.port == 5000 and settings.devices == 200
    assert env["HEARTBEAT_INTERVAL_SECONDS"] == "10"
    assert env["DISCONNECT_AFTER_SECONDS"] == "60"
    assert env["EMBEDDED_SWEEPER"] == "1"


def test_it_lets_the_environment_override_the_demo_thresholds():
    env = child_env(run_settings({}), {"GRACE_PERIOD_SECONDS": "20"})
    assert env["GRACE_PERIOD_SECONDS"] == "20"


def test_it_keeps_the_normal_thresholds_without_the_demo():
    settings = run_settings({"DEMO": "0", "PORT": "8123"})
    env = child_env(settings, {})
    assert not settings.demo and settings.url == "http://127.0.0.1:8123"
    assert not set(DEMO_SERVER_ENV) & set(env)


def test_it_reads_the_demo_admin_and_simulator_from_their_variables():
    settings = run_settings(
        {"DEMO_ADMIN_EMAIL": "ops@example.com", "SIM_DEVICES": "12", "RUN_LOG_DIR": "/tmp/demo"}
    )
    assert (settings.admin_email, settings.devices) == ("ops@example.com", 12)
    assert settings.log_dir == Path("/tmp/demo")


def test_it_refuses_a_bad_value_naming_the_variable():
    with pytest.raises(ConfigError, match=r"^DEMO must be true or false, got 'maybe'; SIM_DEVICES"):
        run_settings({"DEMO": "maybe", "SIM_DEVICES": "0"})


def test_it_tolerates_a_demo_admin_that_already_exists():
    outcome = admin_outcome("a@example.com", 1, "Error: a user a@example.com already exists\n")
    assert outcome == "the admin a@example.com already exists"


def test_it_reports_why_the_demo_admin_could_not_be_created():
    outcome = admin_outcome("a@example.com", 1, "Error: password too short\n")
    assert outcome == "could not create the admin a@example.com: Error: password too short"


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        table[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier}
        found |= frontier
    return found


def running(pids: set[int]) -> set[int]:
    table = process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def test_it_stops_the_server_and_the_simulator_on_ctrl_c(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "DEMO": "1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'pulseboard.sqlite3'}",
        "RUN_LOG_DIR": str(tmp_path),
        "SIM_DEVICES": "5",
    }
    launcher = subprocess.Popen(
        [sys.executable, "-m", "fleet.devserver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(launcher.stdout, lines), daemon=True).start()
    children: set[int] = set()
    try:
        output = ""
        while f"http://127.0.0.1:{port}" not in output:
            output += lines.get(timeout=60)
        children = descendants(launcher.pid)
        assert len(children) >= 2, "expected the server and the simulator"
        simulator_log = tmp_path / "simulator.log"
        while "simulating 5 devices" not in simulator_log.read_text():
            assert launcher.poll() is None
            time.sleep(0.1)
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 0
        deadline = time.monotonic() + 5
        while running(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(children)
        assert "stopped: 5 devices" in simulator_log.read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in running(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
