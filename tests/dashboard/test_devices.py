import re
from datetime import timedelta

from fleet.services import heartbeats, history, reconnects
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import device_row, event_kinds, snapshot_of

T0 = utcnow().replace(microsecond=0) - timedelta(hours=2)


def test_it_shows_the_device_with_its_timeline_telemetry_and_events(client, login, make_device):
    login("viewer")
    device = make_device("alpha", now=T0, name="Lobby screen")
    enforce_timeouts(T0 + timedelta(seconds=100))
    snapshot = snapshot_of(device.token)
    telemetry = heartbeats.Telemetry(battery_level=80, wifi_strength=-60)
    heartbeats.record_heartbeat(snapshot, telemetry, T0 + timedelta(seconds=200))
    page = client.get("/devices/alpha").get_data(as_text=True)
    assert "Lobby screen" in page and "heartbeat received" in page
    assert set(re.findall(r'class="seg seg-(\w+)"', page)) == {
        "none",
        "connected",
        "temporarily_offline",
    }
    assert '<polyline class="line-battery" points="' in page
    assert "no heartbeat for 100 s" in page
    assert "Thresholds" in page and 'name="grace_period_seconds"' not in page


def test_it_says_when_a_device_does_not_exist(client, login):
    login("viewer")
    response = client.get("/devices/nope")
    assert response.status_code == 404
    assert "no device with uid" in response.get_data(as_text=True)


def test_it_serves_only_the_summary_to_htmx_and_varies_on_it(client, login, make_device):
    login("viewer")
    make_device("alpha")
    full = client.get("/devices/alpha")
    fragment = client.get("/devices/alpha", headers={"HX-Request": "true"})
    assert "HX-Request" in full.headers["Vary"]
    assert "HX-Request" in fragment.headers["Vary"]
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="summary"')
    assert "<html" not in body


def test_it_refreshes_the_summary_without_loading_history(client, login, make_device, monkeypatch):
    login("viewer")
    make_device("alpha")
    reconnects.request_reconnect("alpha", "ops", utcnow())

    def not_for_the_summary(*args, **kwargs):
        raise AssertionError("the summary's refresh loaded the page's history")

    for name in ("status_changes", "telemetry_series", "list_events"):
        monkeypatch.setattr(history, name, not_for_the_summary)
    fragment = client.get("/devices/alpha", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "reconnect-pending" in body and "asked by ops" in body


def test_it_lets_an_admin_override_thresholds_and_moves_the_deadlines(client, login, make_device):
    token = login("admin")
    make_device("alpha", now=T0)
    form = {
        "csrf_token": token,
        "heartbeat_interval_seconds": "60",
        "grace_period_seconds": "",
        "disconnect_after_seconds": "900",
    }
    response = client.post("/devices/alpha/thresholds", data=form, follow_redirects=True)
    assert "Thresholds saved." in response.get_data(as_text=True)
    device = device_row("alpha")
    assert (device.heartbeat_interval_seconds, device.grace_period_seconds) == (60, None)
    assert device.offline_due_at == T0 + timedelta(seconds=90)
    assert device.disconnect_due_at == T0 + timedelta(seconds=900)
    assert event_kinds("alpha")[-1] == "settings_changed"


def test_it_refuses_thresholds_where_disconnect_is_not_after_interval_plus_grace(
    client, login, make_device
):
    token = login("admin")
    make_device("alpha", now=T0)
    form = {"csrf_token": token, "heartbeat_interval_seconds": "200", "grace_period_seconds": "100"}
    response = client.post("/devices/alpha/thresholds", data=form, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    # The message sits in the thresholds card, with the values as they were typed.
    card = page[page.index('<section class="card" id="thresholds">') :]
    assert "disconnect-after must be greater than interval + grace" in card[: card.index("<form")]
    assert 'name="heartbeat_interval_seconds" value="200"' in card
    assert 'name="grace_period_seconds" value="100"' in card
    assert 'action="/devices/alpha/thresholds#thresholds"' in card
    assert device_row("alpha").heartbeat_interval_seconds is None
    assert "settings_changed" not in event_kinds("alpha")


def test_it_refuses_a_threshold_past_the_services_limit_with_its_message(
    client, login, make_device
):
    token = login("admin")
    make_device("alpha", now=T0)
    eight_days = str(8 * 86_400)  # within the form's old 30 days, past the service's 7
    form = {"csrf_token": token, "disconnect_after_seconds": eight_days}
    response = client.post("/devices/alpha/thresholds", data=form, follow_redirects=True)
    assert "disconnect_after_seconds must be between 1 and 604800" in response.get_data(
        as_text=True
    )
    assert device_row("alpha").disconnect_after_seconds is None


def test_it_refuses_a_threshold_that_is_not_a_whole_number(client, login, make_device):
    token = login("admin")
    make_device("alpha", now=T0)
    form = {"csrf_token": token, "grace_period_seconds": "1.5"}
    response = client.post("/devices/alpha/thresholds", data=form, follow_redirects=True)
    assert "thresholds are whole numbers of seconds" in response.get_data(as_text=True)
    assert device_row("alpha").grace_period_seconds is None


def test_it_keeps_thresholds_for_admins(client, login, make_device):
    token = login("operator")
    make_device("alpha", now=T0)
    form = {"csrf_token": token, "heartbeat_interval_seconds": "60"}
    assert client.post("/devices/alpha/thresholds", data=form).status_code == 403
    assert device_row("alpha").heartbeat_interval_seconds is None


def timeline_of(page: str) -> str:
    """The timeline's section of a device page (the availability bars have segments too)."""
    return page[page.index('id="timeline"') :].split("</section>", 1)[0]


def test_it_zooms_the_timeline_to_the_span_in_the_url(client, login, make_device):
    login("viewer")
    make_device("alpha", now=T0)
    assert "<h2>Last hour</h2>" in client.get("/devices/alpha?span=1h").get_data(as_text=True)
    assert "<h2>Last 6 hours</h2>" in client.get("/devices/alpha?span=6h").get_data(as_text=True)
    for span in ("", "2h", "%C3%A9", "24h"):
        page = client.get(f"/devices/alpha?span={span}").get_data(as_text=True)
        assert "<h2>Last 24 hours</h2>" in page
    # Two hours old: at 1 h the whole bar is its status, at 24 h most is "not enrolled".
    hour = timeline_of(client.get("/devices/alpha?span=1h").get_data(as_text=True))
    assert set(re.findall(r'class="seg seg-(\w+)"', hour)) == {"connected"}
