"""Starting the `flask` command itself, as cron and operators do, in a process of its own."""

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


def run_flask(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        **env,
    }
    return subprocess.run(
        [FLASK, "--app", str(ROOT / "wsgi.py"), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_command_that_counts_makes_the_metrics_directory_it_is_given(tmp_path):
    metrics_dir = tmp_path / "metrics" / "not-yet"
    listed = run_flask(tmp_path, "devices", "--help", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    assert listed.returncode == 0, listed.stderr
    assert "monitor-status" in listed.stdout
    assert run_flask(tmp_path, "db", "upgrade").returncode == 0
    swept = run_flask(
        tmp_path, "devices", "monitor-status", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    assert swept.returncode == 0, swept.stderr
    # The sweep was observed, in files any gunicorn worker's scrape sums.
    assert sweeps_observed_in(metrics_dir) == 1


def sweeps_observed_in(metrics_dir: Path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    return registry.get_sample_value("pulseboard_sweep_duration_seconds_count") or 0.0


def test_listing_the_commands_loads_none_of_what_only_some_commands_need(tmp_path):
    probe = (
        "import sys; from flask.cli import main; sys.argv = ['flask', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "lazy = ('redis', 'rq', 'psycopg', 'alembic', 'apprise', 'cryptography',\n"
        "        'holidays', 'croniter', 'dateutil', 'fleet.commands.devices',\n"
        "        'fleet.commands.alerts', 'fleet.commands.reports', 'fleet.commands.doctor',\n"
        "        'api.admin', 'api.reports', 'api.openapi', 'dashboard.fleet',\n"
        "        'dashboard.alerts', 'dashboard.availability', 'device_api.views',\n"
        "        'ops.exposition', 'fleet.services.sweep', 'fleet.services.alerts.service',\n"
        "        'fleet.models', 'fleet.services.users', 'fleet.services.queries',\n"
        "        'prometheus_client', 'ops.views')\n"
        "print(sorted(m for m in lazy if m in sys.modules), file=sys.stderr)"
    )
    environment = {
        **os.environ,
        "FLASK_APP": str(ROOT / "wsgi.py"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_flask_db_upgrade_migrates_and_doctor_finds_the_schema_at_head(tmp_path):
    upgraded = run_flask(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    current = run_flask(tmp_path, "db", "current")
    assert "(head)" in current.stdout
    doctor = run_flask(tmp_path, "doctor")
    assert "[ ok ] migrations: at head" in doctor.stdout
    assert "setup plugin" not in doctor.stderr


def test_every_listed_command_says_what_its_real_command_says():
    from werkzeug.utils import import_string

    from fleet.commands import AREAS

    for name, (import_name, summary) in AREAS.items():
        real = import_string(import_name)
        assert real.name == name
        assert real.help.strip().splitlines()[0] == summary


def test_a_lazy_group_refuses_an_unknown_subcommand_as_click_does(tmp_path):
    result = run_flask(tmp_path, "devices", "no-such-command")
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
