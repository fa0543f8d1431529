import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from fleet.errors import DeviceNotFound
from fleet.extensions import db
from fleet.models import DeviceEvent
from fleet.services import heartbeats
from fleet.services.pings import (
    PingResult,
    apply_ping,
    apply_pings,
    devices_needing_ping,
    ping_diagnosis,
)
from fleet.timeutil import utcnow
from tests.helpers import device_row, events_of, snapshot_of

T0 = utcnow().replace(microsecond=0)
ADDRESS = "10.0.0.7"


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def result(uid="kiosk-1", reachable=False, latency_ms=None, checked_at=None):
    return PingResult(uid, reachable, latency_ms, checked_at)


def test_it_ignores_ping_when_heartbeat_is_fresh(make_device):
    make_device("kiosk-1", now=T0)
    outcome = apply_ping(result(reachable=False), at(60))
    assert (outcome.applied, outcome.status) == (False, "connected")
    assert "fresh" in outcome.reason
    stored = device_row("kiosk-1")
    assert (stored.status, stored.ping_reachable, stored.ping_received_at) == (
        "connected",
        None,
        None,
    )
    assert events_of("kiosk-1") == []


def test_it_moves_a_stale_connected_device_offline_on_an_unreachable_result(make_device):
    make_device("kiosk-1", now=T0)
    outcome = apply_ping(result(reachable=False), at(61), actor="token:pinger")
    assert (outcome.applied, outcome.status, outcome.status_changed) == (
        True,
        "temporarily_offline",
        True,
    )
    stored = device_row("kiosk-1")
    assert (stored.status, stored.status_source, stored.status_reason) == (
        "temporarily_offline",
        "external_service",
        "unreachable by external ping",
    )
    assert stored.status_changed_at == at(61)
    assert events_of("kiosk-1") == [("connected", "temporarily_offline", "external_service")]
    logged = db.session.execute(
        select(DeviceEvent).where(DeviceEvent.kind == "status")
    ).scalar_one()
    assert (logged.actor, logged.heartbeat_age_seconds) == ("token:pinger", 61)


def test_a_reachable_result_never_connects_a_device(make_device):
    make_device("kiosk-1", now=T0, status="disconnected")
    outcome = apply_ping(result(reachable=True, latency_ms=12.5), at(400))
    assert (outcome.applied, outcome.status, outcome.reason) == (
        True,
        "disconnected",
        "reachable, app silent",
    )
    stored = device_row("kiosk-1")
    assert stored.status == "disconnected"
    assert (stored.ping_reachable, stored.ping_latency_ms) == (True, 12.5)
    assert ping_diagnosis(stored) == "reachable, app silent"
    assert events_of("kiosk-1") == []


def test_a_reachable_result_leaves_a_stale_connected_device_for_the_sweep(make_device):
    make_device("kiosk-1", now=T0)
    apply_ping(result(reachable=True), at(90))
    stored = device_row("kiosk-1")
    assert (stored.status, stored.ping_reachable) == ("connected", True)
    assert events_of("kiosk-1") == []


def test_an_unreachable_result_on_an_offline_device_only_records_the_diagnosis(make_device):
    make_device("kiosk-1", now=T0, status="temporarily_offline")
    outcome = apply_ping(result(reachable=False), at(120))
    assert (outcome.applied, outcome.status_changed, outcome.reason) == (True, False, "unreachable")
    stored = device_row("kiosk-1")
    assert (stored.status, stored.ping_reachable) == ("temporarily_offline", False)
    assert ping_diagnosis(stored) == "unreachable"
    assert events_of("kiosk-1") == []


def test_every_applied_result_updates_the_diagnosis_and_the_change_time(make_device):
    make_device("kiosk-1", now=T0)
    apply_ping(result(reachable=False, latency_ms=None, checked_at=at(70)), at(75))
    stored = device_row("kiosk-1")
    assert (stored.ping_checked_at, stored.ping_received_at, stored.changed_at) == (
        at(70),
        at(75),
        at(75),
    )
    apply_ping(result(reachable=True, latency_ms=3.0, checked_at=at(200)), at(205))
    stored = device_row("kiosk-1")
    assert (stored.ping_reachable, stored.ping_latency_ms, stored.ping_checked_at) == (
        True,
        3.0,
        at(200),
    )


def test_it_does_not_trust_a_check_time_from_the_future(make_device):
    make_device("kiosk-1", now=T0)
    apply_ping(result(checked_at=at(3600)), at(100))
    assert device_row("kiosk-1").ping_checked_at == at(100)


def test_it_honours_a_devices_own_thresholds(make_device):
    make_device(
        "kiosk-1",
        now=T0,
        heartbeat_interval_seconds=120,
        grace_period_seconds=0,
        disconnect_after_seconds=600,
    )
    assert apply_ping(result(), at(100)).applied is False
    assert apply_ping(result(), at(121)).status == "temporarily_offline"


def test_it_refuses_an_unknown_device(make_device):
    with pytest.raises(DeviceNotFound):
        apply_ping(result(uid="nobody"), at(100))


def test_a_batch_answers_each_result_in_order(make_device):
    make_device("stale", now=T0)
    make_device("fresh", now=at(90))
    answers = apply_pings([result("stale"), result("nobody"), result("fresh")], at(100))
    assert [type(answer).__name__ for answer in answers] == [
        "PingOutcome",
        "DeviceNotFound",
        "PingOutcome",
    ]
    assert (answers[0].status, answers[2].applied) == ("temporarily_offline", False)
    assert device_row("stale").status == "temporarily_offline"


def test_a_heartbeat_landing_between_judgement_and_write_wins(app, make_device):
    """The ping judged the device stale; a heartbeat commits just before its UPDATE."""
    token = make_device("kiosk-1", now=T0).token
    fired = []

    def heartbeat_elsewhere():
        with app.app_context():
            snapshot = snapshot_of(token)
            heartbeats.record_heartbeat(snapshot, heartbeats.Telemetry(), at(95))
            db.session.remove()

    def before_update(conn, cursor, statement, params, context, executemany):
        if (
            statement.startswith("UPDATE device SET")
            and "ping_received_at" in statement
            and not fired
        ):
            fired.append(True)
            thread = threading.Thread(target=heartbeat_elsewhere)
            thread.start()
            thread.join()

    event.listen(db.engine, "before_cursor_execute", before_update)
    try:
        outcome = apply_ping(result(reachable=False), at(100))
    finally:
        event.remove(db.engine, "before_cursor_execute", before_update)
    assert fired
    assert outcome.applied is False
    stored = device_row("kiosk-1")
    assert (stored.status, stored.last_heartbeat_at, stored.ping_received_at) == (
        "connected",
        at(95),
        None,
    )
    assert events_of("kiosk-1") == []


def test_a_device_row_held_by_another_writer_is_applied_once_released(make_device):
    make_device("held", now=T0)
    make_device("free", now=T0)
    engine, locked, release = db.engine, threading.Event(), threading.Event()

    def hold_row():
        with engine.begin() as connection:
            connection.execute(text("UPDATE device SET name = 'held' WHERE uid = 'held'"))
            locked.set()
            release.wait(5)

    holder = threading.Thread(target=hold_row)
    holder.start()
    assert locked.wait(5)
    threading.Timer(0.3, release.set).start()
    answers = apply_pings([result("held"), result("free")], at(100))
    holder.join()
    assert [(a.uid, a.applied, a.status) for a in answers] == [
        ("held", True, "temporarily_offline"),
        ("free", True, "temporarily_offline"),
    ]
    assert events_of("held") == [("connected", "temporarily_offline", "external_service")]
    assert device_row("held").name == "held"


# --- whom to ping -----------------------------------------------------------------


def needing(now, **kwargs):
    return [target.uid for target in devices_needing_ping(now, **kwargs).items]


def test_it_lists_stale_devices_with_an_address_not_pinged_recently(app, make_device):
    app.config["PING_RECHECK_SECONDS"] = 60
    make_device("fresh", now=at(50), last_address=ADDRESS)
    make_device("stale", now=T0, last_address=ADDRESS)
    make_device("offline", now=T0, status="temporarily_offline", last_address=ADDRESS)
    make_device("gone", now=T0, status="disconnected", last_address=ADDRESS)
    make_device("no-address", now=T0)
    make_device("pinged-now", now=T0, last_address=ADDRESS, ping_received_at=at(80))
    make_device("pinged-long-ago", now=T0, last_address=ADDRESS, ping_received_at=at(39))
    assert needing(at(100)) == ["gone", "offline", "pinged-long-ago", "stale"]


def test_the_list_carries_the_address_and_the_last_ping(make_device):
    make_device(
        "kiosk-1",
        now=T0,
        last_address=ADDRESS,
        ping_reachable=True,
        ping_checked_at=at(1),
        ping_received_at=at(2),
    )
    (target,) = devices_needing_ping(at(1000)).items
    assert (target.address, target.last_heartbeat_at, target.ping_reachable) == (ADDRESS, T0, True)
    assert target.ping_checked_at == at(1)


def test_a_device_drops_out_of_the_list_once_pinged(make_device):
    make_device("kiosk-1", now=T0, last_address=ADDRESS)
    assert needing(at(100)) == ["kiosk-1"]
    apply_ping(result(reachable=True), at(100))
    assert needing(at(101)) == []
    assert needing(at(161)) == ["kiosk-1"]


def test_it_pages_by_uid_so_results_posted_meanwhile_skip_nobody(make_device):
    for n in range(5):
        make_device(f"kiosk-{n}", now=T0, last_address=ADDRESS)
    first = devices_needing_ping(at(100), limit=2)
    assert ([t.uid for t in first.items], first.next_after) == (["kiosk-0", "kiosk-1"], "kiosk-1")
    apply_pings([result("kiosk-0"), result("kiosk-1")], at(100))
    second = devices_needing_ping(at(100), limit=2, after=first.next_after)
    assert [t.uid for t in second.items] == ["kiosk-2", "kiosk-3"]
    last = devices_needing_ping(at(100), limit=2, after=second.next_after)
    assert ([t.uid for t in last.items], last.next_after) == (["kiosk-4"], None)


def test_the_diagnosis_is_dropped_once_the_device_speaks_again(make_device):
    token = make_device("kiosk-1", now=T0).token
    apply_ping(result(reachable=True), at(100))
    heartbeats.record_heartbeat(snapshot_of(token), heartbeats.Telemetry(), at(110))
    assert ping_diagnosis(device_row("kiosk-1")) is None
