from datetime import timedelta

from fleet.services import locks
from fleet.services.sweep import SWEEP_LOCK
from fleet.timeutil import utcnow
from tests.helpers import device_row


def silent_devices(make_device, time_machine):
    # The clock stands still, so the ages printed are exactly the silences set here.
    now = utcnow()
    time_machine.move_to(now, tick=False)
    make_device("fresh", now=now)
    make_device("quiet", now=now - timedelta(seconds=90))
    make_device("gone", now=now - timedelta(seconds=900))


def test_it_sweeps_and_prints_counts(runner, make_device, time_machine):
    silent_devices(make_device, time_machine)
    result = runner.invoke(args=["devices", "monitor-status"])
    assert result.exit_code == 0, result.output
    assert "Sweep done." in result.output
    assert "connected -> temporarily_offline" in result.output
    assert "connected -> disconnected" in result.output
    assert device_row("gone").status == "disconnected"
    assert "quiet" not in result.output  # only --verbose lists devices


def test_verbose_lists_each_device_with_its_age(runner, make_device, time_machine):
    silent_devices(make_device, time_machine)
    result = runner.invoke(args=["devices", "monitor-status", "--verbose"])
    lines = [line.split() for line in result.output.splitlines()]
    assert ["quiet", "connected", "temporarily_offline", "90", "s"] in lines
    assert ["gone", "connected", "disconnected", "900", "s"] in lines
    assert not any(line and line[0] == "fresh" for line in lines)


def test_dry_run_reports_and_writes_nothing(runner, make_device, time_machine):
    silent_devices(make_device, time_machine)
    result = runner.invoke(args=["devices", "monitor-status", "--dry-run", "--verbose"])
    assert result.exit_code == 0
    assert "Dry run: nothing written." in result.output
    assert "gone" in result.output
    assert device_row("gone").status == "connected"


def test_it_fails_clearly_while_another_sweep_holds_the_lock(runner, make_device, time_machine):
    silent_devices(make_device, time_machine)
    with locks.held(SWEEP_LOCK, 60, utcnow()) as acquired:
        assert acquired
        result = runner.invoke(args=["devices", "monitor-status"])
    assert result.exit_code != 0
    assert "another sweep is running" in result.output
    assert device_row("gone").status == "connected"


def test_it_fails_clearly_without_a_database(tmp_path):
    from fleet import create_app
    from tests.conftest import TEST_OVERRIDES, base_env

    app = create_app(TEST_OVERRIDES, env=base_env(f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"))
    result = app.test_cli_runner().invoke(args=["devices", "monitor-status"])
    assert result.exit_code != 0
    assert "cannot reach the database" in result.output
