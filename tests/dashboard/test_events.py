from datetime import timedelta

import pytest

from fleet.services import event_log, reconnects
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow

T0 = utcnow().replace(microsecond=0) - timedelta(hours=1)


def table(client, path: str) -> str:
    """The event table of a page, without the filter menus."""
    return client.get(path).get_data(as_text=True).split('<tbody id="event-rows">')[1]


def test_it_lists_transitions_and_operator_actions_filterably(client, login, make_device):
    login("viewer")
    make_device("alpha", now=T0, site="Berlin")
    make_device("bravo", now=T0, site="Paris")
    enforce_timeouts(T0 + timedelta(seconds=100))
    reconnects.request_reconnect("bravo", "ops@example.com", T0 + timedelta(seconds=120))
    everything = table(client, "/events")
    assert everything.count("timeout sweep") >= 2 and "ops@example.com" in everything
    operator = table(client, "/events?source=operator")
    assert "ops@example.com" in operator and "timeout sweep" not in operator
    paris = table(client, "/events?site=Paris&kind=status")
    assert "/devices/bravo" in paris and "/devices/alpha" not in paris
    later = (T0 + timedelta(seconds=110)).strftime("%Y-%m-%dT%H:%M:%S")
    recent = table(client, f"/events?since={later}")
    assert "reconnect requested" in recent and "registered" not in recent


def test_it_pages_through_events_newest_first(client, login, make_device):
    login("viewer")
    for n in range(55):
        make_device(f"kiosk-{n:02}", now=T0 + timedelta(seconds=n))
    first = table(client, "/events")
    assert "/devices/kiosk-54" in first and "/devices/kiosk-00" not in first
    assert "Older" in first
    second = table(client, "/events?page=2")
    assert "/devices/kiosk-00" in second and "Older" not in second


def test_the_pager_says_how_many_pages_and_events(client, login, make_device):
    login("viewer")
    for n in range(55):
        make_device(f"kiosk-{n:02}", now=T0 + timedelta(seconds=n))
    page = client.get("/events?page=2").get_data(as_text=True)
    assert "Page 2 of 2, 55 events" in " ".join(page.split())
    beyond = client.get("/events?page=999").get_data(as_text=True)
    assert "Page 2 of 2" in " ".join(beyond.split()) and "/devices/kiosk-00" in beyond


def test_its_filters_are_partial_and_ignore_case(client, login, make_device):
    login("viewer")
    make_device("Lobby-Berlin-01", now=T0, site="Berlin Mitte")
    make_device("lobby-paris-01", now=T0, site="Paris")
    assert "/devices/lobby-paris-01" not in table(client, "/events?device=BERLIN")
    assert "/devices/Lobby-Berlin-01" in table(client, "/events?device=BERLIN")
    assert "/devices/Lobby-Berlin-01" not in table(client, "/events?site=paR")
    assert "/devices/lobby-paris-01" in table(client, "/events?reason=REGIST&site=paR")


def test_it_shows_the_alerts_log_with_its_actor(client, login, receiver):
    from fleet.services.alerts import channels

    login("viewer")
    channels.add_channel("desk", receiver.url(), "admin@example.com", T0)
    rows = table(client, "/events")
    assert "channel desk added" in rows and "admin@example.com" in rows
    assert "channel added" in table(client, "/events?kind=channel_added&source=operator")


def poller_url(html: str) -> str:
    return (
        html.split('id="poller"', 1)[1]
        .split('hx-get="', 1)[1]
        .split('"', 1)[0]
        .replace("&amp;", "&")
    )


def test_the_first_page_polls_for_new_events_of_its_view(client, login, make_device):
    login("viewer")
    make_device("kiosk-1", now=T0, site="Berlin")
    url = poller_url(client.get("/events?site=berlin").get_data(as_text=True))
    assert "site=berlin" in url
    assert client.get(url).status_code == 204
    make_device("kiosk-2", now=T0, site="Paris")
    moved = client.get(url).get_data(as_text=True)
    assert "/devices/kiosk-2" not in moved and "new event" not in moved
    url = poller_url(moved)
    assert client.get(url).status_code == 204
    make_device("kiosk-3", now=T0, site="Berlin")
    answer = client.get(url).get_data(as_text=True)
    assert "/devices/kiosk-3" in answer and "/devices/kiosk-2" not in answer
    assert 'hx-swap-oob="afterbegin:#event-rows"' in answer and "1 new event at the top" in answer
    assert client.get(poller_url(answer)).status_code == 204


def test_only_the_first_open_ended_page_polls(client, login, make_device, monkeypatch):
    monkeypatch.setattr(event_log, "PER_PAGE", 1)
    login("viewer")
    make_device("kiosk-1", now=T0)
    make_device("kiosk-2", now=T0)
    assert 'id="poller"' not in client.get("/events?page=2").get_data(as_text=True)
    assert 'id="poller"' not in client.get("/events?until=2026-01-01T00:00").get_data(as_text=True)


def test_the_poll_carries_only_the_page_s_filters(client, login, make_device):
    login("viewer")
    make_device("kiosk-1", now=T0)
    html = client.get("/events?site=x&endpoint=y&_external=1&after=3.3").get_data(as_text=True)
    assert poller_url(html).startswith("/events/poll?after=") and "site=x" in poller_url(html)
    assert "endpoint" not in poller_url(html) and "_external" not in poller_url(html)


@pytest.mark.parametrize("after", ["", "1", "x.y", "1.2.3", "-1.2", "9" * 30 + ".1"])
def test_a_malformed_poll_cursor_is_refused(client, login, after):
    login("viewer")
    assert client.get(f"/events/poll?after={after}").status_code == 400
