import re
from datetime import timedelta
from urllib.parse import quote

from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.services import heartbeats, reconnects
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import configure, device_row, finished_bulk_line, snapshot_of

T0 = utcnow().replace(microsecond=0)


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def rows(page: str) -> list[str]:
    return re.findall(r'<tr id="device-\d+" data-id="\d+" class="device-row status-row-(\w+)', page)


def three_tiers(make_device):
    make_device("alpha", site="Berlin", name="Lobby screen")
    make_device("bravo", site="Paris", status="temporarily_offline", status_reason="late")
    make_device("charlie", site="Paris", status="disconnected", status_reason="gone quiet")


def since(moment) -> str:
    return quote(moment.isoformat())


def test_it_shows_each_tier_in_colour_and_word_with_the_reason(client, login, make_device):
    login("viewer")
    three_tiers(make_device)
    page = html(client.get("/"))
    assert sorted(rows(page)) == ["connected", "disconnected", "temporarily_offline"]
    for word in ("Connected", "Temporarily offline", "Disconnected", "gone quiet", "Lobby screen"):
        assert word in page
    assert 'class="status status-disconnected"' in page
    assert "4 or more status changes in 60 min" in page


def test_it_keeps_filters_search_and_sort_in_the_url(client, login, make_device):
    login("viewer")
    three_tiers(make_device)
    assert rows(html(client.get("/?status=disconnected"))) == ["disconnected"]
    assert rows(html(client.get("/?site=Paris&sort=uid"))) == [
        "temporarily_offline",
        "disconnected",
    ]
    assert rows(html(client.get("/?q=lobby"))) == ["connected"]
    page = html(client.get("/?status=nonsense&sort=nonsense&page=x"))
    assert len(rows(page)) == 3


def test_it_paginates_with_links_that_keep_the_filters(client, login, make_device):
    login("viewer")
    for n in range(30):
        make_device(f"kiosk-{n:02}", site="Berlin")
    page = html(client.get("/?site=Berlin&per_page=25&sort=uid"))
    assert len(rows(page)) == 25
    assert "Page 1 of 2" in page
    assert 'href="/?site=Berlin&amp;per_page=25&amp;sort=uid&amp;page=2"' in page
    assert len(rows(html(client.get("/?site=Berlin&per_page=25&sort=uid&page=2")))) == 5


def test_it_shows_the_reconnect_button_to_operators_only(client, login, make_device):
    make_device("alpha")
    login("viewer")
    assert "Reconnect" not in html(client.get("/")).split("<tbody>")[1]
    assert client.post("/devices/alpha/reconnect", headers=csrf(client)).status_code == 403
    assert client.post("/reconnect", headers=csrf(client)).status_code == 403
    assert device_row("alpha").reconnect_state is None


def csrf(client) -> dict[str, str]:
    token = re.search(r'"X-CSRFToken": "([^"]+)"', client.get("/events").get_data(as_text=True))
    return {"X-CSRFToken": token.group(1)}


def test_it_asks_a_device_to_reconnect_and_shows_it_pending(client, login, make_device):
    token = login("operator")
    make_device("alpha")
    response = client.post("/devices/alpha/reconnect", headers={"X-CSRFToken": token})
    row = html(response)
    assert "pending" in row and "operator@example.com" in row
    assert response.headers["HX-Trigger"] == "device-changed"
    device = device_row("alpha")
    assert device.reconnect_state == "pending"
    assert device.reconnect_requested_by == "operator@example.com"


def test_it_reconnects_the_filtered_selection_in_bulk(client, login, make_device):
    token = login("operator")
    three_tiers(make_device)
    response = client.post("/reconnect?site=Paris", headers={"X-CSRFToken": token})
    assert "Asked 2 devices to reconnect" in html(response)
    states = {uid: device_row(uid).reconnect_state for uid in ("alpha", "bravo", "charlie")}
    assert states == {"alpha": None, "bravo": "pending", "charlie": "pending"}
    actors = db.session.execute(
        db.select(DeviceEvent.actor).where(DeviceEvent.kind == "reconnect_requested")
    ).scalars()
    assert set(actors) == {"operator@example.com"}


def test_it_reconnects_a_few_hundred_devices_in_one_bulk_request(client, login, make_device):
    token = login("operator")
    for n in range(200):
        make_device(f"kiosk-{n:03}", site="Depot")
    make_device("elsewhere", site="Lobby")
    response = client.post("/reconnect?site=Depot", headers={"X-CSRFToken": token})
    assert "Asked 200 devices to reconnect" in html(response)
    rows = db.session.execute(
        db.select(Device.uid, Device.reconnect_state, Device.reconnect_delay_seconds)
        .where(Device.site == "Depot")
        .order_by(Device.id)
    ).all()
    assert {state for _, state, _ in rows} == {"pending"}
    delays = [delay for _, _, delay in rows]
    assert delays == sorted(delays) and (delays[0], delays[-1]) == (5, 64)
    assert device_row("elsewhere").reconnect_state is None
    details = db.session.execute(
        db.select(DeviceEvent.details).where(DeviceEvent.kind == "reconnect_requested")
    ).scalars()
    assert [detail["devices"] for detail in details] == [200] * 200


def test_it_draws_the_grid_with_the_pages_flap_settings(
    app, client, login, make_device, monkeypatch
):
    login("viewer")
    three_tiers(make_device)

    def not_per_row():
        raise AssertionError("a row read the flap settings the page already has")

    monkeypatch.setitem(app.jinja_env.globals, "flap_settings", not_per_row)
    assert sorted(rows(html(client.get("/")))) == [
        "connected",
        "disconnected",
        "temporarily_offline",
    ]


def test_it_answers_a_poll_with_nothing_when_nothing_changed(client, login, make_device):
    login("viewer")
    device = make_device("alpha", now=T0 - timedelta(minutes=5))
    cursor = since(T0 - timedelta(minutes=1))
    response = client.get(f"/poll?since={cursor}&shown={device.id}")
    assert response.status_code == 204
    assert response.get_data() == b""


def test_it_polls_only_the_shown_devices_that_changed_plus_the_counters(client, login, make_device):
    login("viewer")
    # Now, not the module's T0: the page judges a reconnect's expiry by the real clock.
    now = utcnow()
    old = now - timedelta(minutes=10)
    alpha = make_device("alpha", now=old)
    bravo = make_device("bravo", now=old)
    charlie = make_device("charlie", now=old)
    reconnects.request_reconnect("alpha", "ops", now)
    reconnects.request_reconnect("charlie", "ops", now)
    query = f"since={since(now - timedelta(minutes=1))}&shown={alpha.id},{bravo.id}"
    response = client.get(f"/poll?{query}")
    body = html(response)
    assert f'id="device-{alpha.id}"' in body
    assert f'id="device-{bravo.id}"' not in body
    assert f'id="device-{charlie.id}"' not in body
    assert 'id="counters" class="counters" aria-label="Fleet counts" hx-swap-oob="true"' in body
    assert 'data-count="reconnect_pending">\n    <span class="count">2</span>' in body
    assert 'id="poller"' in body


def test_it_shows_a_status_change_and_a_delivered_reconnect_in_the_next_poll(
    client, login, make_device
):
    login("operator")
    alpha = make_device("alpha", now=T0)
    reconnects.request_reconnect("alpha", "ops", T0)
    # The sweep stamps what it changes with the real clock (so that a poll never
    # passes a chunk not yet committed): the browser's last poll was just before it.
    last_poll = utcnow() - timedelta(seconds=1)
    enforce_timeouts(T0 + timedelta(seconds=120))
    body = html(client.get(f"/poll?since={since(last_poll)}&shown={alpha.id}"))
    assert "Temporarily offline" in body and "pending" in body
    snapshot = snapshot_of(alpha.token)
    result = heartbeats.record_heartbeat(
        snapshot, heartbeats.Telemetry(), T0 + timedelta(seconds=130)
    )
    assert result.should_reconnect
    body = html(client.get(f"/poll?since={since(T0 + timedelta(seconds=125))}&shown={alpha.id}"))
    assert "Connected" in body and "delivered" in body


def test_it_marks_a_shown_row_that_no_longer_matches_the_filter(client, login, make_device):
    login("viewer")
    alpha = make_device("alpha", now=T0, status="disconnected")
    heartbeats.record_heartbeat(
        snapshot_of(alpha.token),
        heartbeats.Telemetry(),
        T0 + timedelta(seconds=5),
    )
    body = html(client.get(f"/poll?status=disconnected&since={since(T0)}&shown={alpha.id}"))
    assert "no longer matches this filter" in body


def test_it_refuses_a_poll_without_a_cursor(client, login):
    login("viewer")
    assert client.get("/poll").status_code == 400


def test_a_ping_older_than_the_last_heartbeat_no_longer_shows(client, login, make_device):
    login("viewer")
    make_device(
        "recovered",
        last_heartbeat_at=T0,
        ping_reachable=False,
        ping_received_at=T0 - timedelta(minutes=2),
    )
    make_device(
        "silent",
        last_heartbeat_at=T0 - timedelta(minutes=10),
        ping_reachable=True,
        ping_latency_ms=12.4,
        ping_received_at=T0,
    )
    page = html(client.get("/"))
    cells = dict(
        re.findall(r'class="uid">([\w-]+)</a>.*?<td class="c-ping">([^<]*)</td>', page, re.S)
    )
    assert cells == {"recovered": "—", "silent": "reachable, app silent (12 ms)"}


def test_a_large_bulk_reconnect_runs_in_the_background_and_shows_its_progress(
    app, client, login, make_device, backend
):
    token = login("operator")
    configure(app, BULK_INLINE_MAX=3, BULK_CHUNK_SIZE=2)
    for n in range(7):
        make_device(f"kiosk-{n}", site="Depot")
    response = client.post("/reconnect?site=Depot", headers={"X-CSRFToken": token})
    page = html(response)
    assert "Asking 7 devices to reconnect, a chunk at a time" in page
    answer = finished_bulk_line(client, page, backend)
    assert "Asked 7 devices to reconnect" in answer
    assert "hx-get" not in answer  # the line stops polling once the run is done
    db.session.rollback()
    states = {device_row(f"kiosk-{n}").reconnect_state for n in range(7)}
    assert states == {"pending"}


def test_an_unknown_bulk_run_is_not_found(client, login):
    login("viewer")
    assert client.get("/bulk/999").status_code == 404


def test_it_opens_on_the_problems_with_their_count_in_the_tab_title(client, login, make_device):
    login("viewer")
    three_tiers(make_device)
    page = html(client.get("/"))
    assert rows(page) == ["disconnected", "temporarily_offline", "connected"]
    assert "<title>2 need attention · Fleet · Pulseboard</title>" in page
    attention = html(client.get("/?attention=yes"))
    assert rows(attention) == ["disconnected", "temporarily_offline"]


def test_a_poll_answers_204_when_only_unshown_devices_changed_and_not_the_counters(
    client, login, make_device
):
    login("viewer")
    old = utcnow() - timedelta(minutes=1)
    shown = make_device("alpha", now=old)
    elsewhere = make_device("bravo", now=old)
    page = html(client.get("/?per_page=25"))
    poll_url = re.search(r'hx-get="(/poll[^"]+)"', page).group(1).replace("&amp;", "&")
    heartbeats.record_heartbeat(
        snapshot_of(elsewhere.token), heartbeats.Telemetry(battery_level=10), utcnow()
    )
    poll_url = re.sub(r"since=[^&]+", f"since={since(old + timedelta(seconds=1))}", poll_url)
    assert client.get(f"{poll_url}&shown={shown.id}").status_code == 204
    assert client.get(f"{poll_url}&shown={shown.id},{elsewhere.id}").status_code == 200


def test_the_pager_numbers_its_pages_offers_a_jump_and_clamps_a_page_past_the_end(
    client, login, make_device
):
    login("viewer")
    for n in range(30):
        make_device(f"kiosk-{n:02}", now=T0)
    page = html(client.get("/?per_page=25&page=999"))
    assert "Page 2 of 2" in page
    assert '<strong aria-current="page">2</strong>' in page
    assert 'aria-label="Page 1">1</a>' in page
    assert '<label>Go to page <input type="number" name="page" min="1" max="2"' in page
