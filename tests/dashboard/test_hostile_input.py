"""Whatever a browser sends in a URL or form, the dashboard answers without a server error."""

import pytest

HUGE = "9" * 30


@pytest.mark.parametrize(
    "url",
    [
        f"/?page={HUGE}",
        f"/?per_page={HUGE}&sort=transitions",
        f"/poll?shown={HUGE},1,x&since=not-a-time",
        f"/events?page={HUGE}&since=2026-13-45",
        f"/devices/kiosk-1?page={HUGE}",
        "/?page=²&per_page=²",
        "/events?page=²&since=9999-12-31T23:59:59-10:00",
        "/poll?shown=²",
        "/devices/kiosk-1?uid=other&page=2&_external=1",
        "/?q=%00",
        "/devices/kiosk%001",
        "/events?device=%00&site=%25_%5C&reason=" + "x" * 5000,
        "/events?kind=no_such_kind&source=alerts&until=2026-01-01",
        f"/events?source=%00&kind=%00&page={HUGE}",
        f"/events/poll?after=1.1&device=%00&reason=%25&since={HUGE}",
        "/events/poll?after=%C2%B2.1",
    ],
)
def test_it_shrugs_off_absurd_numbers_in_urls(client, login, make_device, url):
    make_device("kiosk-1")
    login("viewer")
    assert client.get(url).status_code < 500


@pytest.mark.parametrize("huge", [HUGE, "9" * 5000])  # past Python's 4,300-digit int limit
def test_it_refuses_an_absurd_threshold_with_a_message(client, login, make_device, huge):
    make_device("kiosk-1")
    token = login("admin")
    response = client.post(
        "/devices/kiosk-1/thresholds",
        data={"csrf_token": token, "heartbeat_interval_seconds": huge},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "heartbeat_interval_seconds must be between 1 and 604800" in response.get_data(
        as_text=True
    )
