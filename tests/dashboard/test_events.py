from datetime import timedelta

from fleet.services import reconnects
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
