from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fleet.extensions import db
from fleet.models import Device, DeviceEvent, TelemetrySample
from fleet.services import enrolment, heartbeats, locks, reconnects, sweep
from fleet.services.events import COPY_AT_LEAST
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import device_row, event_kinds, events_of, snapshot_of, writes_refused

T0 = utcnow().replace(microsecond=0)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def test_it_leaves_a_device_connected_up_to_interval_plus_grace(make_device):
    make_device("kiosk-1", now=T0)
    assert enforce_timeouts(at(60)).transitions == 0
    assert device_row("kiosk-1").status == "connected"


def test_it_moves_a_silent_device_through_both_tiers(make_device):
    make_device("kiosk-1", now=T0)
    report = enforce_timeouts(at(61))
    assert report.counts() == {"connected -> temporarily_offline": 1}
    stored = device_row("kiosk-1")
    assert (stored.status, stored.status_source) == ("temporarily_offline", "system")
    assert "interval + grace" in stored.status_reason
    assert enforce_timeouts(at(300)).transitions == 0
    report = enforce_timeouts(at(301))
    assert report.counts() == {"temporarily_offline -> disconnected": 1}
    assert events_of("kiosk-1") == [
        ("connected", "temporarily_offline", "system"),
        ("temporarily_offline", "disconnected", "system"),
    ]


def test_it_disconnects_a_long_silent_device_in_one_step(make_device):
    make_device("kiosk-1", now=T0)
    report = enforce_timeouts(at(1000))
    assert [(c.from_status, c.to_status) for c in report.changes] == [("connected", "disconnected")]
    assert report.changes[0].heartbeat_age_seconds == 1000


def test_its_events_name_the_threshold_and_age(make_device):
    make_device("kiosk-1", now=T0)
    enforce_timeouts(at(90))
    event = db.session.execute(select(DeviceEvent).where(DeviceEvent.kind == "status")).scalar_one()
    assert event.reason == "no heartbeat for 90 s (offline after 60 s: interval + grace)"
    assert event.heartbeat_age_seconds == 90


def test_it_honours_per_device_thresholds(make_device):
    make_device(
        "quick",
        now=T0,
        heartbeat_interval_seconds=5,
        grace_period_seconds=5,
        disconnect_after_seconds=20,
        offline_due_at=at(10),
        disconnect_due_at=at(20),
    )
    make_device("normal", now=T0)
    report = enforce_timeouts(at(21))
    assert [(c.uid, c.to_status) for c in report.changes] == [("quick", "disconnected")]
    reason = "no heartbeat for 21 s (disconnect after 20 s)"
    assert device_row("quick").status_reason == reason
    assert last_reason("quick") == reason


def last_reason(uid: str) -> str:
    return db.session.execute(
        select(DeviceEvent.reason)
        .join(Device, Device.id == DeviceEvent.device_id)
        .where(Device.uid == uid)
        .order_by(DeviceEvent.id.desc())
        .limit(1)
    ).scalar_one()


def test_a_timeout_reason_quotes_the_thresholds_that_applied_not_todays(make_device):
    # Deadlines stored under other settings (say, before a restart with new defaults):
    # the fleet's defaults are now 30 + 30 s and 300 s.
    make_device("old", now=T0, offline_due_at=at(20), disconnect_due_at=at(90))
    enforce_timeouts(at(25))
    offline = "no heartbeat for 25 s (offline after 20 s: interval + grace)"
    assert (device_row("old").status_reason, last_reason("old")) == (offline, offline)
    enforce_timeouts(at(95))
    gone = "no heartbeat for 95 s (disconnect after 90 s)"
    assert (device_row("old").status_reason, last_reason("old")) == (gone, gone)


def test_a_dry_run_reports_the_same_and_writes_nothing(make_device):
    make_device("kiosk-1", now=T0)
    make_device("kiosk-2", now=at(200))
    dry = enforce_timeouts(at(400), dry_run=True)
    assert dry.counts() == {"connected -> disconnected": 1, "connected -> temporarily_offline": 1}
    assert device_row("kiosk-1").status == "connected"
    assert event_kinds("kiosk-1") == ["registered"]
    real = enforce_timeouts(at(400))
    assert real.counts() == dry.counts()


def test_a_second_sweep_changes_nothing(make_device):
    for n in range(5):
        make_device(f"kiosk-{n}", now=T0)
    assert enforce_timeouts(at(120)).transitions == 5
    assert enforce_timeouts(at(120)).transitions == 0
    count = db.session.execute(
        select(func.count()).select_from(DeviceEvent).where(DeviceEvent.kind == "status")
    ).scalar_one()
    assert count == 5


def test_a_heartbeat_after_the_sweep_reconnects_with_its_own_event(make_device):
    device = make_device("kiosk-1", now=T0)
    enforce_timeouts(at(100))
    snapshot = snapshot_of(device.token)
    heartbeats.record_heartbeat(snapshot, heartbeats.Telemetry(), at(101))
    assert device_row("kiosk-1").status == "connected"
    assert enforce_timeouts(at(102)).transitions == 0
    assert [to for _, to, _ in events_of("kiosk-1")] == ["temporarily_offline", "connected"]


def test_it_expires_pending_reconnects_past_their_ttl(make_device):
    make_device("kiosk-1", now=T0)
    reconnects.request_reconnect("kiosk-1", "ops", at(0))
    assert enforce_timeouts(at(599)).reconnects_expired == 0
    assert enforce_timeouts(at(600)).reconnects_expired == 1
    assert device_row("kiosk-1").reconnect_state == "expired"
    assert event_kinds("kiosk-1")[-1] == "reconnect_expired"


def test_it_prunes_telemetry_older_than_the_retention(make_device):
    device = make_device("kiosk-1", now=T0)
    snapshot = snapshot_of(device.token)
    heartbeats.record_heartbeat(snapshot, heartbeats.Telemetry(battery_level=80), at(0))
    enforce_timeouts(at(86_401))
    assert db.session.execute(select(func.count()).select_from(TelemetrySample)).scalar_one() == 0


def test_devices_that_never_spoke_are_left_alone(app):
    enrolment.add_device("kiosk-1", T0)
    assert enforce_timeouts(at(10_000)).transitions == 0
    assert device_row("kiosk-1").status == "disconnected"


def test_a_large_sweep_writes_every_event_in_full(make_device):
    # Past COPY_AT_LEAST events PostgreSQL takes them by COPY; both paths must agree.
    count = COPY_AT_LEAST + 10
    for n in range(count):
        make_device(f"kiosk-{n:02d}", now=T0)
    assert enforce_timeouts(at(90)).transitions == count
    events = db.session.execute(select(DeviceEvent).where(DeviceEvent.kind == "status")).scalars()
    rows = {
        (e.from_status, e.to_status, e.source, e.reason, e.heartbeat_age_seconds) for e in events
    }
    assert rows == {
        (
            "connected",
            "temporarily_offline",
            "system",
            "no heartbeat for 90 s (offline after 60 s: interval + grace)",
            90,
        )
    }
    assert db.session.execute(select(func.count()).select_from(DeviceEvent)).scalar_one() == 120


def test_it_moves_a_fleet_larger_than_a_chunk_in_several(make_device, monkeypatch):
    monkeypatch.setattr(sweep, "CHUNK", 2)
    for n in range(5):
        make_device(f"kiosk-{n}", now=T0)
    report = enforce_timeouts(at(90))
    assert sorted(change.uid for change in report.changes) == [f"kiosk-{n}" for n in range(5)]
    assert all(device_row(f"kiosk-{n}").status == "temporarily_offline" for n in range(5))
    assert sum(len(events_of(f"kiosk-{n}")) for n in range(5)) == 5


def test_a_fleet_of_exactly_whole_chunks_ends_the_loop(make_device, monkeypatch):
    monkeypatch.setattr(sweep, "CHUNK", 2)
    for n in range(4):
        make_device(f"kiosk-{n}", now=T0)
    assert enforce_timeouts(at(90)).transitions == 4
    assert enforce_timeouts(at(90)).transitions == 0


def test_a_row_that_fails_its_chunk_is_skipped_and_the_others_still_move(make_device, caplog):
    for uid in ("kiosk-a", "broken", "kiosk-b"):
        make_device(uid, now=T0)
    broken_id = device_row("broken").id
    with writes_refused("broken", how="fail"):
        report = enforce_timeouts(at(90))
    assert sorted(change.uid for change in report.changes) == ["kiosk-a", "kiosk-b"]
    # structlog hands each line to the standard logging as its event dict.
    lines = [record.msg for record in caplog.records if record.name == "pulseboard.sweep"]
    failures = [(line["event"], line.get("device_id")) for line in lines]
    assert failures == [("sweep_chunk_failed", None), ("sweep_row_failed", broken_id)]
    assert device_row("broken").status == "connected"
    assert events_of("broken") == []
    assert events_of("kiosk-a") == [("connected", "temporarily_offline", "system")]
    # The next sweep, with the row healthy again, moves it.
    assert [change.uid for change in enforce_timeouts(at(91)).changes] == ["broken"]


def test_chunks_committed_before_a_failure_are_kept(make_device, monkeypatch):
    monkeypatch.setattr(sweep, "CHUNK", 1)
    for uid in ("kiosk-a", "kiosk-b", "broken"):
        make_device(uid, now=T0)
    with writes_refused("broken", how="fail"):
        report = enforce_timeouts(at(90))
    assert sorted(change.uid for change in report.changes) == ["kiosk-a", "kiosk-b"]
    assert [device_row(uid).status for uid in ("kiosk-a", "kiosk-b", "broken")] == [
        "temporarily_offline",
        "temporarily_offline",
        "connected",
    ]


def test_a_sweep_renews_its_lock_after_each_chunk(make_device, monkeypatch):
    monkeypatch.setattr(sweep, "CHUNK", 2)
    for n in range(5):
        make_device(f"kiosk-{n}", now=T0)
    renewals = []
    enforce_timeouts(at(90), keep_alive=lambda: renewals.append(1))
    assert len(renewals) == 3  # chunks of 2, 2 and 1


def test_a_sweep_that_lost_its_lock_stops_and_keeps_what_it_committed(make_device, monkeypatch):
    monkeypatch.setattr(sweep, "CHUNK", 1)
    for uid in ("kiosk-a", "kiosk-b"):
        make_device(uid, now=T0)

    def lost() -> None:
        raise locks.LeaseLost("taken over")

    with pytest.raises(locks.LeaseLost):
        enforce_timeouts(at(90), keep_alive=lost)
    statuses = sorted(device_row(uid).status for uid in ("kiosk-a", "kiosk-b"))
    assert statuses == ["connected", "temporarily_offline"]  # one chunk done, then it stopped


def test_run_sweep_records_a_sweep_that_lost_its_lock_as_skipped(make_device, monkeypatch):
    make_device("kiosk-a", now=T0)

    def stolen(_lock: locks.Held) -> None:
        raise locks.LeaseLost("taken over")

    monkeypatch.setattr(locks.Held, "renew", stolen)  # another sweep took it meanwhile
    report = sweep.run_sweep(at(90), runner="test")
    assert (report.skipped, report.skip_reason) == (True, "the sweep lock lapsed mid-way")
    assert device_row("kiosk-a").status == "temporarily_offline"  # its chunk stands
