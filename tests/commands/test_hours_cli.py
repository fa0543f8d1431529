"""`flask sites schedule ...` and `flask maintenance ...`, as operators and scripts use them."""

from __future__ import annotations

from fleet.services.device_state import get_device


def invoke(runner, *args):
    return runner.invoke(args=list(args))


def test_sites_schedule_sets_and_shows_hours_holidays_and_closures(runner):
    result = invoke(
        runner, "sites", "schedule", "Harbour Mall", "--timezone", "Europe/Berlin",
        "--hours", "mon-fri 08:00-20:00", "--hours", "sat 10:00-14:00",
        "--holidays", "DE-BE", "--closed", "2026-12-24:2026-12-26:Christmas",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Time zone: Europe/Berlin" in result.output
    assert "fri 08:00-20:00" in result.output and "sun closed" in result.output
    assert "Closed on public holidays: DE-BE" in result.output
    assert "Closed 2026-12-24 to 2026-12-26 Christmas" in result.output
    shown = invoke(runner, "sites", "schedule", "Harbour Mall")
    assert "sat 10:00-14:00" in shown.output and "Now:" in shown.output


def test_bad_hours_fail_with_a_message_naming_what_is_wrong(runner):
    result = invoke(runner, "sites", "schedule", "mall", "--hours", "someday 08:00-20:00")
    assert result.exit_code != 0 and "days are mon" in result.output
    zone = invoke(runner, "sites", "schedule", "mall", "--timezone", "Mars/Base")
    assert zone.exit_code != 0 and "timezone" in zone.output
    shown = invoke(runner, "sites", "schedule", "mall")
    assert "always open" in shown.output


def test_a_device_schedule_overrides_its_site(runner, make_device):
    make_device("kiosk-1", site="mall")
    result = invoke(runner, "sites", "device-schedule", "kiosk-1", "--hours", "mon 00:00-00:01")
    assert result.exit_code == 0, result.output
    assert get_device("kiosk-1").expected_off in (None, "off_hours")
    cleared = invoke(runner, "sites", "device-schedule", "kiosk-1", "--clear")
    assert cleared.exit_code == 0 and "always open" in cleared.output


def test_maintenance_add_prints_the_id_last_then_list_and_end(runner, make_device):
    make_device("kiosk-1", site="mall")
    added = invoke(
        runner, "maintenance", "add", "--uid", "kiosk-1",
        "--ends", "2099-01-01T00:00", "--note", "swap",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    window_id = added.output.strip().splitlines()[-1]
    assert get_device("kiosk-1").expected_off == "maintenance"
    listed = invoke(runner, "maintenance", "list")
    assert "device kiosk-1" in listed.output and "swap" in listed.output and " on " in listed.output
    ended = invoke(runner, "maintenance", "end", window_id)
    assert ended.exit_code == 0, ended.output
    assert get_device("kiosk-1").expected_off is None
    again = invoke(runner, "maintenance", "end", window_id)
    assert again.exit_code != 0 and "already over" in again.output


def test_a_recurring_window_needs_its_duration(runner):
    result = invoke(runner, "maintenance", "add", "--site", "mall", "--cron", "0 2 * * sun")
    assert result.exit_code != 0 and "duration_minutes" in result.output
