from datetime import timedelta

from fleet.extensions import db
from fleet.models import Device
from fleet.services import heartbeats, reconnects
from fleet.services.queries import (
    DeviceFilter,
    among,
    fleet_counts,
    list_devices,
    matching_device_ids,
)
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import snapshot_of

T0 = utcnow().replace(microsecond=0)


def flap(device, times: int, start):
    """Alternate sweeps and heartbeats so the device changes status `times` times."""
    now = start
    for n in range(times):
        now += timedelta(seconds=100)
        if n % 2 == 0:
            enforce_timeouts(now)
        else:
            heartbeats.record_heartbeat(snapshot_of(device.token), heartbeats.Telemetry(), now)


def uids(page):
    return [device.uid for device, _ in page.items]


def test_it_filters_by_status_site_and_search(make_device):
    make_device("lobby-1", now=T0, site="Berlin", name="Lobby")
    make_device("lobby-2", now=T0, site="Paris", status="disconnected")
    make_device("cafe-1", now=T0, site="Berlin", name="Cafe screen")
    assert uids(list_devices(DeviceFilter(site="Berlin", sort="uid"), T0)) == ["cafe-1", "lobby-1"]
    assert uids(list_devices(DeviceFilter(status="disconnected"), T0)) == ["lobby-2"]
    assert uids(list_devices(DeviceFilter(q="CAFE"), T0)) == ["cafe-1"]
    assert uids(list_devices(DeviceFilter(q="paris"), T0)) == ["lobby-2"]


def test_it_counts_flapping_devices_in_the_window(make_device):
    steady = make_device("steady", now=T0)
    flappy = make_device("flappy", now=T0)
    flap(flappy, 4, T0)
    now = T0 + timedelta(seconds=400)
    heartbeats.record_heartbeat(snapshot_of(steady.token), heartbeats.Telemetry(), now)
    page = list_devices(DeviceFilter(flapping=True), now)
    assert [(device.uid, flaps) for device, flaps in page.items] == [("flappy", 4)]
    assert uids(list_devices(DeviceFilter(sort="transitions"), now)) == ["flappy", "steady"]
    assert fleet_counts(now)["flapping"] == 1
    later = now + timedelta(hours=2)
    assert fleet_counts(later)["flapping"] == 0


def test_it_counts_the_fleet_by_status_and_pending_reconnects(make_device):
    make_device("a", now=T0)
    make_device("b", now=T0, status="temporarily_offline")
    make_device("c", now=T0, status="disconnected")
    reconnects.request_reconnect("a", "ops", T0)
    counts = fleet_counts(T0)
    assert counts == {
        "connected": 1,
        "temporarily_offline": 1,
        "disconnected": 1,
        "flapping": 0,
        "reconnect_pending": 1,
        "attention": 3,  # two not connected, one with a reconnect pending
        "off_hours": 0,
        "maintenance": 0,
        "total": 3,
    }
    assert fleet_counts(T0 + timedelta(seconds=601))["reconnect_pending"] == 0


def test_the_default_order_puts_problems_first_then_the_stalest_heartbeat(make_device):
    make_device("a-fresh", now=T0)
    make_device("b-stale", now=T0 - timedelta(minutes=1))
    make_device("c-late", now=T0, status="temporarily_offline")
    make_device("d-gone", now=T0, status="disconnected")
    make_device("e-gone-longer", now=T0 - timedelta(hours=1), status="disconnected")
    assert uids(list_devices(DeviceFilter(), T0)) == [
        "e-gone-longer",
        "d-gone",
        "c-late",
        "b-stale",
        "a-fresh",
    ]


def test_flapping_devices_come_after_the_problem_tiers_and_before_the_calm_ones(make_device):
    flappy = make_device("flappy", now=T0)
    flap(flappy, 4, T0)  # connected again at T0 + 400 s, after four changes
    now = T0 + timedelta(seconds=450)
    make_device("calm", now=now)
    # Staler than the flapping device, so heartbeat age alone would put it first.
    make_device("calm-stale", now=now - timedelta(seconds=55))
    make_device("late", now=now, status="temporarily_offline")
    make_device("gone", now=now, status="disconnected")
    order = ["gone", "late", "flappy", "calm-stale", "calm"]
    assert uids(list_devices(DeviceFilter(), now)) == order
    # Pages that start or end inside each stretch see the same order.
    for per_page in (1, 2, 3, 4):
        pages = -(-len(order) // per_page)
        seen = [
            uid
            for n in range(1, pages + 1)
            for uid in uids(list_devices(DeviceFilter(page=n, per_page=per_page), now))
        ]
        assert seen == order, per_page
    assert uids(list_devices(DeviceFilter(attention=True), now)) == ["gone", "late", "flappy"]
    assert uids(list_devices(DeviceFilter(site="nowhere"), now)) == []


def test_needs_attention_is_everything_not_connected_flapping_or_pending(make_device):
    flappy = make_device("flappy", now=T0)
    flap(flappy, 4, T0)  # its sweeps would time out devices made before
    now = T0 + timedelta(seconds=450)
    make_device("calm", now=now)
    make_device("late", now=now, status="temporarily_offline")
    make_device("asked", now=now)
    reconnects.request_reconnect("asked", "ops", now)
    view = DeviceFilter(attention=True, sort="uid")
    assert uids(list_devices(view, now)) == ["asked", "flappy", "late"]
    assert fleet_counts(now)["attention"] == 3


def test_it_paginates_with_a_total(make_device):
    for n in range(7):
        make_device(f"kiosk-{n}", now=T0)
    page = list_devices(DeviceFilter(sort="uid", page=2, per_page=3), T0)
    assert (page.total, page.pages, uids(page)) == (7, 3, ["kiosk-3", "kiosk-4", "kiosk-5"])
    assert len(matching_device_ids(DeviceFilter(), T0)) == 7


def test_a_page_past_the_end_is_the_last_page(make_device):
    for n in range(7):
        make_device(f"kiosk-{n}", now=T0)
    page = list_devices(DeviceFilter(sort="uid", page=999, per_page=3), T0)
    assert (page.page, page.pages, uids(page)) == (3, 3, ["kiosk-6"])


def test_among_matches_the_values_given_as_an_array_or_a_list(make_device):
    ids = [make_device(f"kiosk-{n}", site=f"site-{n % 2}").id for n in range(4)]
    select = db.select(Device.uid).order_by(Device.uid)
    assert db.session.execute(select.where(among(Device.id, ids[1:3]))).scalars().all() == [
        "kiosk-1",
        "kiosk-2",
    ]
    by_site = select.where(among(Device.site, ["site-1", "nowhere"]))
    assert db.session.execute(by_site).scalars().all() == ["kiosk-1", "kiosk-3"]
    assert db.session.execute(select.where(among(Device.id, []))).scalars().all() == []
