"""The one-statement common heartbeat: only the cases it may take, written as the planner would."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fleet.extensions import db
from fleet.models import Device, DeviceEvent, TelemetrySample
from fleet.services.device_state import fleet_defaults
from fleet.services.fast_heartbeat import fast_heartbeat
from fleet.services.heartbeats import Telemetry, record_heartbeat
from fleet.timeutil import utcnow
from fleet.tokens import hash_token
from tests.helpers import device_row, snapshot_of

T0 = utcnow().replace(microsecond=0)
SAMPLED = {"telemetry_sampled_at": T0}  # no telemetry sample due for five minutes
# Columns that name the device rather than describe its state.
IDENTITY = {"id", "uid", "token_hash"}


def fast(device, now, telemetry=None, address=None):
    token_hash = hash_token(device.token)
    reported = vars(telemetry or Telemetry())
    return fast_heartbeat(token_hash, reported, now, address, fleet_defaults())


def state_of(uid):
    row = device_row(uid)
    return {
        column.key: getattr(row, column.key)
        for column in Device.__table__.columns
        if column.key not in IDENTITY
    }


@pytest.mark.parametrize(
    "telemetry",
    [
        Telemetry(),
        Telemetry(battery_level=42.5, wifi_strength=-61, app_version="2.1.0"),
        Telemetry(uptime_seconds=86_400, extra={"screen": "on", "temp": 41.5}),
        Telemetry(battery_level=100.0),  # what registration stored: no visible change
        Telemetry(battery_level=97.5, wifi_strength=-63),  # jitter inside a 5-unit band
        Telemetry(battery_level=94.0),  # into the next band down: a visible change
    ],
    ids=["empty", "visible change", "invisible fields", "unchanged value", "jitter", "a step"],
)
def test_it_leaves_the_row_exactly_as_the_planner_would(make_device, telemetry):
    fields = {**SAMPLED, "battery_level": 100.0, "wifi_strength": -62, "extra": {"screen": "off"}}
    by_statement = make_device("by-statement", now=T0, **fields)
    by_planner = make_device("by-planner", now=T0, **fields)
    now = T0 + timedelta(seconds=30)
    assert fast(by_statement, now, telemetry, address="10.0.0.7")
    record_heartbeat(snapshot_of(by_planner.token), telemetry, now, address="10.0.0.7")
    assert state_of("by-statement") == state_of("by-planner")


def test_two_heartbeats_in_a_row_leave_the_rows_alike_too(make_device):
    by_statement = make_device("by-statement", now=T0, **SAMPLED)
    by_planner = make_device("by-planner", now=T0, **SAMPLED)
    for seconds, battery in ((30, 80.0), (60, 79.0)):
        now = T0 + timedelta(seconds=seconds)
        telemetry = Telemetry(battery_level=battery)
        assert fast(by_statement, now, telemetry)
        record_heartbeat(snapshot_of(by_planner.token), telemetry, now)
    assert state_of("by-statement") == state_of("by-planner")


@pytest.mark.parametrize(
    "columns",
    [
        {"status": "temporarily_offline"},
        {"status": "disconnected"},
        {"reconnect_state": "pending"},
        {"heartbeat_interval_seconds": 10},
        {"grace_period_seconds": 5},
        {"disconnect_after_seconds": 600},
    ],
    ids=lambda columns: next(iter(columns)) + "=" + str(next(iter(columns.values()))),
)
def test_it_leaves_every_other_case_to_the_planner_untouched(make_device, columns):
    device = make_device("kiosk-1", now=T0, **{**SAMPLED, **columns})
    before = state_of("kiosk-1")
    assert not fast(device, T0 + timedelta(seconds=30), Telemetry(battery_level=5.0))
    assert state_of("kiosk-1") == before


def samples_of(uid):
    device_id = device_row(uid).id
    rows = db.session.execute(
        select(
            TelemetrySample.recorded_at,
            TelemetrySample.battery_level,
            TelemetrySample.wifi_strength,
        )
        .where(TelemetrySample.device_id == device_id)
        .order_by(TelemetrySample.id)
    )
    return [tuple(row) for row in rows]


DUE = [None, T0 - timedelta(seconds=300)]


@pytest.mark.parametrize("sampled_at", DUE, ids=["first heartbeat", "sample due"])
def test_on_postgresql_it_samples_due_telemetry_as_the_planner_would(
    make_device, backend, sampled_at
):
    if backend != "postgres":
        pytest.skip("on SQLite a due sample is the planner's")
    by_statement = make_device("by-statement", now=T0, telemetry_sampled_at=sampled_at)
    by_planner = make_device("by-planner", now=T0, telemetry_sampled_at=sampled_at)
    telemetry = Telemetry(battery_level=42.5, wifi_strength=-61, uptime_seconds=5)
    now = T0 + timedelta(seconds=30)
    assert fast(by_statement, now, telemetry)
    record_heartbeat(snapshot_of(by_planner.token), telemetry, now)
    assert state_of("by-statement") == state_of("by-planner")
    assert samples_of("by-statement") == samples_of("by-planner") == [(now, 42.5, -61)]


@pytest.mark.parametrize("sampled_at", DUE, ids=["first heartbeat", "sample due"])
def test_on_sqlite_a_due_sample_is_left_to_the_planner(make_device, backend, sampled_at):
    if backend != "sqlite":
        pytest.skip("PostgreSQL's statement samples itself")
    device = make_device("kiosk-1", now=T0, telemetry_sampled_at=sampled_at)
    before = state_of("kiosk-1")
    assert not fast(device, T0 + timedelta(seconds=30), Telemetry(battery_level=5.0))
    assert state_of("kiosk-1") == before


def test_a_heartbeat_with_no_sample_due_samples_nothing(make_device):
    device = make_device("kiosk-1", now=T0, **SAMPLED)
    assert fast(device, T0 + timedelta(seconds=299), Telemetry(battery_level=5.0))
    assert samples_of("kiosk-1") == []
    assert device_row("kiosk-1").telemetry_sampled_at == T0


def test_a_device_sampled_at_this_very_instant_is_left_to_the_planner(make_device, backend):
    if backend != "postgres":
        pytest.skip("only PostgreSQL's statement samples")
    now = T0 + timedelta(seconds=30)
    device = make_device("kiosk-1", now=T0, telemetry_sampled_at=now)
    assert not fast(device, now, Telemetry(battery_level=5.0))
    assert samples_of("kiosk-1") == []


def test_it_takes_a_delivered_or_expired_reconnect_as_nothing_pending(make_device):
    device = make_device("kiosk-1", now=T0, reconnect_state="delivered", **SAMPLED)
    assert fast(device, T0 + timedelta(seconds=30))


def test_an_unknown_token_updates_nothing(make_device):
    make_device("kiosk-1", now=T0, **SAMPLED)
    before = state_of("kiosk-1")
    token_hash = hash_token("pbd_no-such-device")
    now = T0 + timedelta(seconds=30)
    assert not fast_heartbeat(token_hash, vars(Telemetry()), now, None, fleet_defaults())
    assert state_of("kiosk-1") == before


def test_it_writes_no_event(make_device):
    device = make_device("kiosk-1", now=T0, **SAMPLED)
    assert fast(device, T0 + timedelta(seconds=30), Telemetry(battery_level=5.0))
    count = db.session.execute(select(func.count()).select_from(DeviceEvent)).scalar_one()
    assert count == 1  # the registration's
