"""Requests a careless or hostile client can send: each gets a clear 4xx, never a 500."""

import pytest
from pydantic import ValidationError

from api.admin_schemas import PingRequest
from fleet.services.queries import DeviceFilter, list_devices
from fleet.timeutil import utcnow
from tests.api.admin_support import bearer, service_token
from tests.conftest import ENROLLMENT_KEY
from tests.helpers import HEARTBEAT, beat, device_row

REGISTER = "/api/devices/register"


@pytest.mark.parametrize("key", [123, {"a": 1}, ["x"], None, True])
def test_an_enrolment_key_that_is_not_text_is_refused(client, key):
    response = client.post(REGISTER, json={"uid": "kiosk-1", "enrollment_key": key})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 50_000,
        b'{"uid": "kiosk-1", "extra": {"a": NaN}}',
        b'{"uid": "kiosk-1", "extra": {"a": Infinity}}',
        b'{"uid": "kiosk-1", "name": "lobby\\u0000screen"}',
        b'{"uid": "kiosk-1", "extra": {"k\\u0000": 1}}',
        # Shallow enough for the parser, deep enough for a recursive NUL check.
        b'{"uid": "kiosk-1", "extra": {"a": ' + b"[" * 900 + b'"\\u0000"' + b"]" * 900 + b"}}",
        # JSON between systems is UTF-8 (RFC 8259).
        '{"uid": "kiosk-1"}'.encode("utf-16"),
        b'{"uid": "kiosk-\xff"}',
    ],
)
def test_bodies_json_or_postgresql_cannot_hold_are_malformed(client, raw):
    response = client.post(
        REGISTER,
        data=raw,
        headers={"X-Enrollment-Key": ENROLLMENT_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed_json"


def nested(levels: int) -> dict:
    """An `extra` object whose containers nest `levels` deep (itself included)."""
    value: dict | list = {}
    for level in range(levels - 1):
        value = [value] if level % 2 else {"a": value}
    return value


@pytest.mark.parametrize("raw", [b"[" * 900 + b"1" + b"]" * 900, b"[" * 10 + b"]" * 10])
def test_deeply_nested_telemetry_is_a_field_error_that_stores_nothing(client, enrol, raw):
    token = enrol("kiosk-1")["token"]
    response = client.post(
        HEARTBEAT,
        data=b'{"battery_level": 50, "extra": {"a": ' + raw + b"}}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_field"
    assert "levels deep" in response.json["error"]["details"]["fields"]["extra"]
    stored = device_row("kiosk-1")
    assert (stored.extra, stored.battery_level) == (None, None)


def test_telemetry_nested_to_the_bound_is_accepted(client, enrol):
    token = enrol("kiosk-1")["token"]
    assert beat(client, token, extra=nested(10)).status_code == 200
    assert device_row("kiosk-1").extra == nested(10)


def test_the_depth_bound_is_a_setting(make_app, enrol_factory):
    app = make_app(EXTRA_MAX_DEPTH=2)
    with app.app_context():
        client = app.test_client()
        shallow, deep = enrol_factory(client, "kiosk-1"), enrol_factory(client, "kiosk-2")
        assert beat(client, shallow, extra={"a": {"b": 1}}).status_code == 200
        assert beat(client, deep, extra={"a": {"b": [1]}}).status_code == 422


@pytest.mark.parametrize("levels", [11, 256])
def test_a_device_already_storing_too_deep_telemetry_does_not_break_the_admin_api(
    client, make_device, levels
):
    """What a heartbeat could store before the bound: the API serves the rest of the device."""
    make_device("kiosk-0")
    make_device("kiosk-1", extra=nested(levels), battery_level=40.0)
    reader = bearer(service_token("read"))
    listed = client.get("/api/admin/devices", query_string={"sort": "uid"}, headers=reader)
    assert listed.status_code == 200
    assert [item["uid"] for item in listed.json["items"]] == ["kiosk-0", "kiosk-1"]
    one = client.get("/api/admin/devices/kiosk-1", headers=reader)
    assert one.status_code == 200
    telemetry = one.json["telemetry"]
    assert (telemetry["extra"], telemetry["extra_withheld"]) == (None, True)
    assert telemetry["battery_level"] == 40.0
    assert listed.json["items"][0]["telemetry"]["extra_withheld"] is False


@pytest.mark.parametrize(
    "url", ["/api/admin/devices/a%00b", "/api/admin/devices?q=%00", "/api/nowhere%00"]
)
def test_a_nul_in_a_url_is_a_bad_request(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert set(response.json["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("checked_at", ["0001-01-01T00:00:00+14:00", "1970-01-01T00:00:00Z"])
def test_an_implausible_ping_time_is_a_field_error(checked_at):
    with pytest.raises(ValidationError, match="checked_at"):
        PingRequest.model_validate({"uid": "kiosk-1", "reachable": True, "checked_at": checked_at})


def test_a_search_for_a_percent_sign_is_literal(make_device):
    make_device("kiosk-1")
    make_device("promo-50%")
    page = list_devices(DeviceFilter(q="50%"), utcnow())
    assert [device.uid for device, _ in page.items] == ["promo-50%"]
    assert list_devices(DeviceFilter(q="%"), utcnow()).total == 1  # not every device


def test_a_json_body_sent_with_curls_default_content_type_still_registers(client):
    response = client.post(
        REGISTER,
        data='{"uid": "kiosk-1"}',
        headers={
            "X-Enrollment-Key": ENROLLMENT_KEY,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 201


def test_a_body_led_by_a_byte_order_mark_is_read(client):
    """RFC 8259 lets a parser ignore a UTF-8 byte order mark, and some firmware writes one."""
    response = client.post(
        REGISTER,
        data=b'\xef\xbb\xbf{"uid": "kiosk-1"}',
        headers={"X-Enrollment-Key": ENROLLMENT_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.json["uid"] == "kiosk-1"
