from datetime import timedelta

from fleet.services import heartbeats
from fleet.services.history import telemetry_series, timeline_segments
from fleet.timeutil import utcnow
from tests.helpers import snapshot_of

START = utcnow().replace(microsecond=0) - timedelta(hours=24)
END = START + timedelta(hours=24)


def stretches(segments):
    return [(s.status, round(s.left, 3), round(s.width, 3)) for s in segments]


def test_it_draws_a_steady_device_as_one_stretch_of_its_status():
    assert stretches(timeline_segments([], "connected", START, END)) == [("connected", 0, 1)]


def test_it_starts_from_the_first_changes_old_status_and_follows_each_change():
    changes = [
        (START + timedelta(hours=6), "connected", "temporarily_offline"),
        (START + timedelta(hours=12), "temporarily_offline", "disconnected"),
    ]
    assert stretches(timeline_segments(changes, "disconnected", START, END)) == [
        ("connected", 0, 0.25),
        ("temporarily_offline", 0.25, 0.25),
        ("disconnected", 0.5, 0.5),
    ]


def test_it_leaves_the_time_before_enrolment_blank():
    created = START + timedelta(hours=18)
    assert stretches(timeline_segments([], "connected", START, END, created)) == [
        (None, 0, 0.75),
        ("connected", 0.75, 0.25),
    ]


def test_it_holds_the_last_telemetry_reading_until_now(make_device):
    device = make_device("alpha", now=START)
    snapshot = snapshot_of(device.token)
    telemetry = heartbeats.Telemetry(battery_level=50, wifi_strength=-60)
    heartbeats.record_heartbeat(snapshot, telemetry, START + timedelta(hours=12))
    series = telemetry_series(device.id, START, END)
    assert series.samples == 1
    assert series.battery.endswith("50.00,50.00 100.00,50.00")
    assert series.latest_wifi == -60


def test_each_telemetry_sample_is_a_mark_reaching_to_the_next(make_device):
    device = make_device("alpha", now=START)
    for hours, battery in ((6, 80), (18, 40)):
        telemetry = heartbeats.Telemetry(battery_level=battery)
        heartbeats.record_heartbeat(
            snapshot_of(device.token), telemetry, START + timedelta(hours=hours)
        )
    series = telemetry_series(device.id, START, END)
    assert [(m.value, m.left, m.width) for m in series.battery_marks] == [
        (80, 0.25, 0.5),
        (40, 0.75, 0.25),
    ]
    assert series.wifi_marks == ()
