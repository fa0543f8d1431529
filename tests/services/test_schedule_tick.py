"""The schedule tick: windows, overrides, the per-site cache, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fleet.alert_models import AlertLog
from fleet.errors import InvalidField, StateConflict
from fleet.extensions import db
from fleet.models import DeviceEvent
from fleet.schedules import Schedule
from fleet.services import hours
from fleet.services.device_state import get_device
from fleet.services.hours import WindowSpec
from fleet.services.schedule_tick import run_schedule_tick
from fleet.services.sweep import enforce_timeouts

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday
NEVER_OPEN = {"timezone": "UTC", "weekly": {}}
ALWAYS_OPEN = {"timezone": "UTC"}


def later(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def state(uid: str) -> str | None:
    db.session.expire_all()
    return get_device(uid).expected_off


def log_kinds() -> list[str]:
    return list(db.session.execute(select(AlertLog.kind).order_by(AlertLog.id)).scalars())


def kinds_of(uid: str) -> list[str]:
    device = get_device(uid)
    query = select(DeviceEvent.kind).where(DeviceEvent.device_id == device.id)
    return list(db.session.execute(query.order_by(DeviceEvent.id)).scalars())


def test_a_window_that_starts_while_devices_are_already_offline(make_device):
    make_device("k1", now=NOW - timedelta(hours=1), site="mall")
    enforce_timeouts(NOW)
    assert get_device("k1").status == "disconnected"
    spec = WindowSpec(site="mall", starts_at=later(10), ends_at=later(70), note="firmware")
    window = hours.create_window(spec, "ops@example.com", NOW)
    assert state("k1") is None  # not begun
    run_schedule_tick(later(10))
    device = get_device("k1")
    assert (device.status, device.expected_off) == ("disconnected", "maintenance")
    assert kinds_of("k1")[-1] == "expected_off"
    assert hours.window_state(hours.get_window(window.id), later(11)) == "on"
    assert log_kinds() == ["maintenance_created", "maintenance_opened"]


def test_a_window_that_ends_with_devices_still_down_is_an_outage_after_the_grace(make_device):
    make_device("k1", now=NOW - timedelta(minutes=1), site="mall")
    hours.create_window(WindowSpec(site="mall", ends_at=later(30)), "ops", NOW)
    assert state("k1") == "maintenance"
    enforce_timeouts(later(20))
    assert get_device("k1").status == "disconnected"
    enforce_timeouts(later(30))
    assert state("k1") is None
    assert "silent_at_opening" not in kinds_of("k1")
    enforce_timeouts(later(31.5))
    [event] = db.session.execute(
        select(DeviceEvent).where(DeviceEvent.kind == "silent_at_opening")
    ).scalars()
    assert event.reason == "expected at 10:30, silent since 09:59"
    assert log_kinds()[-1] == "maintenance_closed"
    assert hours.window_state(hours.list_windows()[0], later(32)) == "over"


def test_a_device_with_its_own_hours_overrides_its_site(make_device):
    for uid in ("k1", "k2", "k3"):
        make_device(uid, now=NOW, site="mall")
    hours.set_site_hours("mall", NEVER_OPEN, "ops", NOW)
    hours.set_device_hours("k1", ALWAYS_OPEN, "ops", NOW)
    hours.set_device_hours("k3", NEVER_OPEN, "ops", NOW)
    assert (state("k1"), state("k2"), state("k3")) == (None, "off_hours", "off_hours")
    hours.set_site_hours("mall", ALWAYS_OPEN, "ops", later(1))
    assert (state("k1"), state("k2"), state("k3")) == (None, None, "off_hours")
    hours.clear_device_hours("k3", "ops", later(2))
    assert state("k3") is None


def test_a_window_wins_over_hours_and_ending_it_early_logs_the_actor(make_device):
    make_device("k1", now=NOW, site="mall")
    make_device("k2", now=NOW, site="mall")
    hours.set_site_hours("mall", NEVER_OPEN, "ops", NOW)
    window = hours.create_window(WindowSpec(uids=["k1"], ends_at=later(60)), "ops", NOW)
    assert (state("k1"), state("k2")) == ("maintenance", "off_hours")
    hours.end_window(window.id, "ana@example.com", later(5))
    assert (state("k1"), state("k2")) == ("off_hours", "off_hours")
    entry = db.session.execute(select(AlertLog).order_by(AlertLog.id.desc())).scalars().first()
    assert (entry.kind, entry.actor) == ("maintenance_ended_early", "ana@example.com")
    with pytest.raises(StateConflict):
        hours.end_window(window.id, "ana@example.com", later(6))


def test_a_window_over_a_saved_fleet_filter_covers_the_devices_it_matches(make_device):
    make_device("lobby-1", now=NOW, site="mall")
    make_device("lobby-2", now=NOW, site="station")
    make_device("exit-1", now=NOW, site="mall")
    spec = WindowSpec(fleet_filter="q=lobby&page=3", ends_at=later(60))
    window = hours.create_window(spec, "ops", NOW)
    assert window.fleet_filter == "q=lobby"
    assert [state(u) for u in ("lobby-1", "lobby-2", "exit-1")] == ["maintenance"] * 2 + [None]


def test_a_recurring_window_comes_back(make_device):
    make_device("k1", now=NOW, site="mall")
    spec = WindowSpec(site="mall", cron="0 * * * *", duration_minutes=15)
    hours.create_window(spec, "ops", NOW)
    assert state("k1") == "maintenance"
    run_schedule_tick(later(15))
    assert state("k1") is None
    run_schedule_tick(later(60))
    assert state("k1") == "maintenance"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (WindowSpec(ends_at=NOW + timedelta(hours=1)), "site"),
        (WindowSpec(site="a", uids=["k1"], ends_at=NOW + timedelta(hours=1)), "site"),
        (WindowSpec(uids=["nobody"], ends_at=NOW + timedelta(hours=1)), "uids"),
        (WindowSpec(site="a"), "ends_at"),
        (WindowSpec(site="a", ends_at=NOW - timedelta(hours=1)), "ends_at"),
        (WindowSpec(site="a", cron="0 2 * *", duration_minutes=5), "cron"),
        (WindowSpec(fleet_filter="sort=uid", ends_at=NOW + timedelta(hours=1)), "filter"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field_and_changes_nothing(app, spec, field):
    with pytest.raises(InvalidField) as raised:
        hours.create_window(spec, "ops", NOW)
    assert list(raised.value.details["fields"]) == [field]
    db.session.rollback()
    assert hours.list_windows() == [] and log_kinds() == []


def test_each_site_is_evaluated_once_a_minute_and_a_change_invalidates_that_site_alone(
    make_device, monkeypatch
):
    make_device("k1", now=NOW, site="mall")
    make_device("k2", now=NOW, site="station")
    hours.set_site_hours("mall", ALWAYS_OPEN, "ops", NOW)
    hours.set_site_hours("station", ALWAYS_OPEN, "ops", NOW)
    evaluated: list[str] = []
    original = Schedule.is_open

    def counting(self, at):
        evaluated.append(self.timezone)
        return original(self, at)

    monkeypatch.setattr(Schedule, "is_open", counting)
    run_schedule_tick(NOW + timedelta(seconds=5))
    run_schedule_tick(NOW + timedelta(seconds=10))
    assert evaluated == []  # both cached from the ticks the changes ran
    hours.set_site_hours("mall", {"timezone": "Europe/Berlin", "weekly": {}}, "ops", NOW)
    assert evaluated == ["Europe/Berlin"]  # the changed site alone
    assert (state("k1"), state("k2")) == ("off_hours", None)
    run_schedule_tick(later(1))
    assert sorted(evaluated) == ["Europe/Berlin", "Europe/Berlin", "UTC"]  # a new minute


def test_the_events_page_finds_a_windows_log_entries_by_its_site_or_device(make_device):
    from fleet.services import event_log
    from fleet.services.event_log import LogFilter

    make_device("k1", now=NOW, site="mall")
    hours.create_window(WindowSpec(uids=["k1"], ends_at=later(60)), "ana@example.com", NOW)
    hours.create_window(WindowSpec(site="mall", ends_at=later(60)), "ana@example.com", NOW)
    by_device = event_log.events_screen(LogFilter(device="k1")).entries
    assert {"maintenance_created", "maintenance_opened"} <= {entry.kind for entry in by_device}
    by_site = [e for e in event_log.events_screen(LogFilter(site="mall")).entries if e.site]
    assert {entry.actor for entry in by_site if entry.kind == "maintenance_created"} == {
        "ana@example.com"
    }
