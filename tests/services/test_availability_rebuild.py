"""Rebuilding the rollups from the raw events, and pruning history past its retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from fleet.availability_models import AvailabilityDay, AvailabilityHour, AvailabilityTally, Outage
from fleet.extensions import db
from fleet.models import DeviceEvent
from fleet.services.availability import rebuild, reports
from tests.helpers import configure
from tests.services.availability_support import (
    expect_off,
    move,
    naive_buckets,
    rounded,
    stored_buckets,
)

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def _history(make_device):
    device = make_device("kiosk-1", now=T0)
    move(device, "disconnected", T0 + timedelta(hours=5))
    expect_off(device, "off_hours", T0 + timedelta(hours=20))
    move(device, "connected", T0 + timedelta(hours=30))
    expect_off(device, None, T0 + timedelta(hours=44))
    return device


def _wipe():
    for model in (AvailabilityDay, AvailabilityHour, AvailabilityTally, Outage):
        db.session.execute(delete(model))
    db.session.commit()


def test_a_rebuild_gives_back_the_rollups_the_transactions_wrote(make_device):
    device = _history(make_device)
    before = rounded(stored_buckets(device.id, "day"))
    outages = [(o.started_at, o.ended_at) for o in db.session.execute(select(Outage)).scalars()]
    _wipe()
    report = rebuild.rebuild()
    assert report.devices == 1
    assert rounded(stored_buckets(device.id, "day")) == before
    assert [(o.started_at, o.ended_at) for o in db.session.execute(select(Outage)).scalars()] == (
        outages
    )
    now = T0 + timedelta(hours=50)
    _, seconds = reports.device_availability("kiosk-1", "7d", now)
    assert seconds.disconnected == 15 * 3600
    assert seconds.off_hours == 24 * 3600


def test_a_rebuild_since_a_day_keeps_the_days_before_it(make_device):
    device = _history(make_device)
    first_day = T0.date()
    db.session.execute(
        AvailabilityDay.__table__.update()
        .where(AvailabilityDay.day == first_day)
        .values(connected_seconds=1.0)
    )
    db.session.execute(
        AvailabilityDay.__table__.update()
        .where(AvailabilityDay.day > first_day)
        .values(connected_seconds=0.0)
    )
    db.session.commit()
    rebuild.rebuild(since=first_day + timedelta(days=1))
    stored = rounded(stored_buckets(device.id, "day"))
    naive = rounded(naive_buckets(device.id, "day", T0 + timedelta(hours=44)))
    assert stored[first_day][0] == 1.0  # untouched
    assert {k: v for k, v in stored.items() if k > first_day} == {
        k: v for k, v in naive.items() if k > first_day
    }


def test_pruning_deletes_events_and_rollups_past_their_retention(app, make_device):
    configure(app, EVENT_RETENTION_DAYS=93, ROLLUP_RETENTION_DAYS=400)
    _history(make_device)
    now = T0 + timedelta(days=95)
    report = rebuild.prune_history(now)
    assert report.events == 5  # registered + four changes
    assert db.session.execute(select(func.count()).select_from(DeviceEvent)).scalar_one() == 0
    # The job moved the idle tally on to now first: a day row each up to today,
    # and the hour rows of the last 24 hours only.
    assert db.session.execute(select(func.count()).select_from(AvailabilityDay)).scalar_one() == 96
    assert db.session.execute(select(func.count()).select_from(AvailabilityHour)).scalar_one() == 24
    assert report.tallies_moved == 1
    # Rollups outlive the events: the figures of the old days still stand.
    report = reports.availability_report(T0.date(), T0.date(), "device", now)
    assert report.rows[0].seconds.disconnected == 9.5 * 3600
    assert rebuild.prune_history(T0 + timedelta(days=403)).days == 3


def test_the_rebuild_command_reports_what_it_did(runner, make_device):
    _history(make_device)
    result = runner.invoke(args=["reports", "rebuild", "--since", "2026-11-02"])
    assert result.exit_code == 0, result.output
    assert "Rebuilt availability of 1 devices from 5 events." in result.output
    bad = runner.invoke(args=["reports", "rebuild", "--since", "yesterday"])
    assert bad.exit_code == 2


def test_the_prune_command_prunes_now(runner, make_device):
    result = runner.invoke(args=["reports", "prune"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Pruned 0 events")
    assert result.output.rstrip().endswith("moved 0 idle tallies on.")
