"""The demo fleet's made-up past: a week of events folded into real-looking rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fleet.extensions import db
from fleet.models import Device
from fleet.services.availability import demo_history, reports
from tests.services.availability_support import naive_buckets, rounded, stored_buckets

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _night_site() -> str:
    return next(f"site-{n}" for n in range(50) if demo_history.closes_at_night(f"site-{n}"))


def test_it_gives_fresh_devices_a_week_and_folds_it_like_live_events(make_device):
    night = _night_site()
    for n in range(12):
        make_device(f"sim-{n}", now=NOW - timedelta(minutes=5), site=night if n < 3 else "day")
    assert demo_history.backfill(7, NOW) == 12
    devices = db.session.execute(select(Device)).scalars().all()
    assert {d.created_at for d in devices} == {NOW - timedelta(days=7, minutes=5)}
    for device in devices:
        assert rounded(stored_buckets(device.id, "day")) == rounded(
            naive_buckets(device.id, "day", NOW)
        )
    _, closing = reports.device_availability("sim-0", "7d", NOW)
    assert closing.off_hours > 5 * 8 * 3600
    report = reports.availability_report((NOW - timedelta(days=6)).date(), NOW.date(), "fleet", NOW)
    assert 0.5 < report.rows[0].seconds.availability < 1
    # Run again: nobody is fresh any more, nothing changes.
    assert demo_history.backfill(7, NOW) == 0


def test_the_command_says_what_it_did(runner, make_device):
    make_device("sim-1")
    result = runner.invoke(args=["reports", "demo-history", "--days", "3"])
    assert result.exit_code == 0, result.output
    assert "Gave 1 devices 3 days of demo history." in result.output
