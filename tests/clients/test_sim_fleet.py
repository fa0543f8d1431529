"""The simulator without a server: its fleet, its options, its isolation and its Ctrl-C."""

from __future__ import annotations

import ast
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients.sim_device import Journal
from clients.sim_fleet import (
    DEFAULT_MIX,
    SITES,
    MixError,
    assign_behaviours,
    fleet_layout,
    parse_mix,
)
from clients.simulator import Settings, build_fleet, parse_args
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = {"fleet", "api", "dashboard", "jobs"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "clients").glob("*.py")), ids=lambda p: p.name)
def test_it_keeps_clients_free_of_server_imports(path: Path):
    assert not imported_packages(path) & SERVER_PACKAGES


def test_it_reads_a_behaviour_mix():
    assert parse_mix("steady=70, flaky=10") == {"steady": 70.0, "flaky": 10.0}


@pytest.mark.parametrize(
    "text", ["steady", "sleepy=3", "steady=lots", "steady=-1", "steady=0,flaky=0", ""]
)
def test_it_refuses_a_mix_it_cannot_read(text: str):
    with pytest.raises(MixError):
        parse_mix(text)


def test_it_gives_each_behaviour_exactly_its_share():
    names = assign_behaviours(200, parse_mix(DEFAULT_MIX), random.Random(1))
    assert {name: names.count(name) for name in set(names)} == {
        "steady": 140,
        "flaky": 20,
        "dying": 10,
        "intermittent": 20,
        "too_fast": 10,
    }


def test_it_rounds_small_fleets_to_the_biggest_shares():
    assert sorted(
        assign_behaviours(3, {"steady": 60, "flaky": 30, "dying": 10}, random.Random())
    ) == [
        "flaky",
        "steady",
        "steady",
    ]


def test_it_replays_the_same_fleet_for_the_same_seed():
    def fleet(seed: int) -> list[tuple[str, str, str]]:
        devices = build_fleet(Settings(devices=50, seed=seed), Journal())
        return [(d.uid, d.behaviour.name, d.reconnect_by) for d in devices]

    assert fleet(5) == fleet(5)
    assert fleet(5) != fleet(6)


def test_it_enrols_the_same_devices_whatever_the_seed_so_reruns_reuse_them():
    uids = {d.uid for d in build_fleet(Settings(devices=30, seed=1), Journal())}
    assert uids == {d.uid for d in build_fleet(Settings(devices=30, seed=2), Journal())}


def test_it_lays_the_fleet_out_over_real_looking_sites():
    layout = fleet_layout(200)
    assert len({profile.uid for profile in layout}) == 200
    assert {profile.site for profile in layout} == {site for site, _ in SITES}
    assert fleet_layout(20) == layout[:20]
    assert "sim-berlin-hq-001" in {profile.uid for profile in layout}


def test_it_takes_its_options_from_flags_over_the_environment():
    env = {"SIM_DEVICES": "12", "SIM_TIME_SCALE": "3", "ENROLLMENT_KEY": "k", "SIM_SEED": "9"}
    settings = parse_args(["--devices", "5", "--mix", "flaky=1"], env)
    assert (settings.devices, settings.time_scale, settings.enrollment_key, settings.seed) == (
        5,
        3.0,
        "k",
        9,
    )
    assert settings.mix == {"flaky": 1.0}


def test_it_rejects_a_bad_mix_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--mix", "sleepy=1"], {})
    assert "--mix" in capsys.readouterr().err


def test_it_stops_cleanly_on_ctrl_c_even_while_the_server_is_down():
    server = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "clients.simulator", "--devices", "20", "--server", server],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        line = ""
        while "server unavailable" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
        assert "server unavailable" in line, "the simulator never noticed the server was down"
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "stopped: 20 devices" in rest
