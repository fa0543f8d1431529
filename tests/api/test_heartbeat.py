from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, update

from api.schemas import HeartbeatResponse
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.services import reconnects
from fleet.timeutil import utcnow
from fleet.tokens import hash_token
from tests.conftest import unavailable
from tests.helpers import HEARTBEAT, beat, device_row, disable_rate_limits, event_kinds, events_of


def test_it_answers_with_the_design_fields(client, enrol):
    token = enrol("kiosk-1")["token"]
    response = beat(client, token, battery_level=81.5, wifi_strength=-61, uptime_seconds=99)
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "connected"
    assert 28 <= body["heartbeat_interval_seconds"] <= 31  # 30 s with 5 % jitter
    assert body["should_reconnect"] is False
    assert body["reconnect_delay_seconds"] == 0
    assert body["server_time"].endswith("Z")
    assert HeartbeatResponse.model_validate(body).model_dump(mode="json") == body
    assert response.content_type == "application/json"
    device = device_row("kiosk-1")
    assert (device.battery_level, device.wifi_strength, device.uptime_seconds) == (81.5, -61, 99)


def test_it_accepts_an_empty_body(client, enrol):
    token = enrol()["token"]
    assert client.post(HEARTBEAT, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_it_tells_a_device_its_own_interval(client, make_device):
    device = make_device("kiosk-1", heartbeat_interval_seconds=100)
    assert 95 <= beat(client, device.token).json["heartbeat_interval_seconds"] <= 105


def test_its_replies_spread_a_fleet_s_interval_by_a_few_percent(unlimited_client, enrol):
    token = enrol()["token"]
    told = {beat(unlimited_client, token).json["heartbeat_interval_seconds"] for _ in range(150)}
    # 29 and 31 each take a sixth of the draws: 150 draws miss one once in 10^11 runs.
    assert told == {29, 30, 31}


def test_its_replies_carry_the_interval_itself_with_jitter_off(make_app, enrol_factory):
    app = make_app(HEARTBEAT_JITTER_PERCENT=0)
    disable_rate_limits(app)
    with app.app_context():
        client = app.test_client()
        token = enrol_factory(client, "kiosk-1")
        assert {beat(client, token).json["heartbeat_interval_seconds"] for _ in range(5)} == {30}


def test_it_keeps_telemetry_a_heartbeat_leaves_out(unlimited_client, enrol):
    token = enrol()["token"]
    beat(unlimited_client, token, battery_level=50, wifi_strength=-70)
    beat(unlimited_client, token, battery_level=49)
    device = device_row("kiosk-1")
    assert (device.battery_level, device.wifi_strength) == (49, -70)


@pytest.mark.parametrize("status", ["temporarily_offline", "disconnected"])
def test_it_reconnects_a_stale_device_with_one_event(client, make_device, status):
    device = make_device("kiosk-1", status=status)
    assert beat(client, device.token).json["status"] == "connected"
    stored = device_row("kiosk-1")
    assert (stored.status, stored.status_source, stored.status_reason) == (
        "connected",
        "device",
        "heartbeat received",
    )
    assert events_of("kiosk-1") == [(status, "connected", "device")]


def test_a_heartbeat_that_changes_no_status_writes_no_event(unlimited_client, enrol):
    token = enrol()["token"]
    for _ in range(3):
        assert beat(unlimited_client, token).status_code == 200
    assert events_of("kiosk-1") == []
    assert event_kinds("kiosk-1") == ["registered"]


def test_it_moves_the_deadlines_with_each_heartbeat(client, make_device):
    long_ago = utcnow() - timedelta(hours=1)
    device = make_device("kiosk-1", offline_due_at=long_ago, disconnect_due_at=long_ago)
    beat(client, device.token)
    stored = device_row("kiosk-1")
    assert stored.offline_due_at == stored.last_heartbeat_at + timedelta(seconds=60)
    assert stored.disconnect_due_at == stored.last_heartbeat_at + timedelta(seconds=300)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
    ],
)
def test_it_refuses_missing_or_unknown_tokens(client, headers):
    response = client.post(HEARTBEAT, json={}, headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_it_takes_an_integral_number_for_an_integer_field(unlimited_client, enrol):
    token = enrol()["token"]
    response = beat(unlimited_client, token, wifi_strength=-67.0, uptime_seconds=3600.0)
    assert response.status_code == 200
    device = device_row("kiosk-1")
    assert (device.wifi_strength, device.uptime_seconds) == (-67, 3600)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"battery_level": 101}, "battery_level"),
        ({"battery_level": -1}, "battery_level"),
        ({"battery_level": "50"}, "battery_level"),
        ({"wifi_strength": 5}, "wifi_strength"),
        ({"wifi_strength": -121}, "wifi_strength"),
        ({"wifi_strength": -60.5}, "wifi_strength"),
        ({"uptime_seconds": -3}, "uptime_seconds"),
        ({"uptime_seconds": True}, "uptime_seconds"),
        ({"uptime_seconds": "60"}, "uptime_seconds"),
        ({"app_version": 7}, "app_version"),
        ({"app_version": "x" * 65}, "app_version"),
        ({"extra": "not an object"}, "extra"),
        ({"extra": {"blob": "x" * 5000}}, "extra"),
    ],
)
def test_it_names_a_bad_field_and_changes_nothing(client, make_device, body, field):
    device = make_device("kiosk-1", status="temporarily_offline")
    response = beat(client, device.token, **body)
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "invalid_field"
    assert field in error["details"]["fields"]
    assert field in error["message"]
    assert device_row("kiosk-1").status == "temporarily_offline"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_it_answers_malformed_json_with_400(client, enrol, raw):
    token = enrol()["token"]
    response = client.post(
        HEARTBEAT,
        data=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed_json"


def test_it_refuses_a_3mb_body_with_413(client, enrol):
    token = enrol()["token"]
    response = client.post(
        HEARTBEAT, data=b"x" * 3_000_000, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", HEARTBEAT, 405),
        ("post", "/api/nowhere", 404),
        ("delete", "/api/devices/register", 405),
    ],
)
def test_it_answers_routing_errors_in_the_error_shape(client, method, url, status):
    response = getattr(client, method)(url)
    assert response.status_code == status
    assert set(response.json["error"]) == {"code", "message", "details"}


class TestRateLimits:
    def test_an_immediate_second_heartbeat_is_limited_and_changes_nothing(
        self, client, make_device
    ):
        device = make_device("kiosk-1")
        assert beat(client, device.token, battery_level=90).status_code == 200
        db.session.execute(
            update(Device).where(Device.uid == "kiosk-1").values(status="temporarily_offline")
        )
        db.session.commit()
        response = beat(client, device.token, battery_level=10)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        assert response.json["error"]["code"] == "rate_limited"
        stored = device_row("kiosk-1")
        assert (stored.status, stored.battery_level) == ("temporarily_offline", 90)

    def test_the_cap_per_minute_holds_without_a_minimum_interval(self, make_app, enrol_factory):
        app = make_app(HEARTBEAT_MIN_INTERVAL_SECONDS=0, HEARTBEAT_MAX_PER_MINUTE=3)
        with app.app_context():
            client = app.test_client()
            token = enrol_factory(client, "kiosk-1")
            codes = [beat(client, token).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]

    def test_limits_count_in_a_redis_reached_through_its_unix_socket(
        self, app_env, redis_server, make_app, enrol_factory
    ):
        if redis_server is None:
            unavailable("redis-server is not installed")
        # redis-py's and RQ's spelling, which `limits` alone does not accept.
        app_env["REDIS_URL"] = redis_server.socket_url
        app = make_app()
        with app.app_context():
            client = app.test_client()
            token = enrol_factory(client, "kiosk-1")
            codes = [beat(client, token).status_code for _ in range(2)]
        assert codes == [200, 429]
        counted = redis.Redis.from_url(redis_server.socket_url)
        assert counted.keys(f"*heartbeat*device:{hash_token(token)}*")

    def test_limits_are_per_device(self, client, enrol):
        first, second = enrol("kiosk-1")["token"], enrol("kiosk-2")["token"]
        assert beat(client, first).status_code == 200
        assert beat(client, second).status_code == 200
        assert beat(client, first).status_code == 429

    def test_bad_tokens_are_limited_per_address(self, make_app, enrol_factory):
        app = make_app(BAD_TOKEN_MAX_PER_MINUTE=3)
        with app.app_context():
            client = app.test_client()
            codes = [beat(client, f"bad-{n}").status_code for n in range(4)]
            other = client.post(
                HEARTBEAT,
                headers={"Authorization": "Bearer bad"},
                environ_base={"REMOTE_ADDR": "10.9.9.9"},
            )
            token = enrol_factory(client, "kiosk-1")
            valid = beat(client, token).status_code
        assert codes == [401, 401, 401, 429]
        assert other.status_code == 401
        assert valid == 200

    def test_bad_tokens_over_the_allowance_are_told_when_to_retry(self, make_app):
        app = make_app(BAD_TOKEN_MAX_PER_MINUTE=1)
        with app.app_context():
            client = app.test_client()
            beat(client, "bad-1")
            response = beat(client, "bad-2")
        assert response.status_code == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 61  # the window, rounded up
        assert response.json["error"]["code"] == "rate_limited"

    def test_retry_after_never_tells_a_limited_device_to_retry_at_once(
        self, make_app, enrol_factory, limit_clock
    ):
        app = make_app(HEARTBEAT_MIN_INTERVAL_SECONDS=1)
        with app.app_context():
            client = app.test_client()
            token = enrol_factory(client, "kiosk-1")
            assert beat(client, token).status_code == 200
            limit_clock.shift(0.7)  # late in the window (room left for a slow request on Redis)
            late = beat(client, token)
        assert late.status_code == 429
        assert int(late.headers["Retry-After"]) >= 1


class TestReconnect:
    def test_it_delivers_a_reconnect_exactly_once(self, unlimited_client, make_device):
        device = make_device("kiosk-1")
        beat(unlimited_client, device.token)  # a device in its steady rhythm
        reconnects.request_reconnect("kiosk-1", "ops@example.com", utcnow(), delay_seconds=7)
        first = beat(unlimited_client, device.token).json
        second = beat(unlimited_client, device.token).json
        assert (first["should_reconnect"], first["reconnect_delay_seconds"]) == (True, 7)
        assert (second["should_reconnect"], second["reconnect_delay_seconds"]) == (False, 0)
        stored = device_row("kiosk-1")
        assert stored.reconnect_state == "delivered"
        assert stored.reconnect_delivered_at is not None
        assert event_kinds("kiosk-1")[-2:] == ["reconnect_requested", "reconnect_delivered"]

    def test_it_never_delivers_an_expired_request(self, client, make_device):
        device = make_device("kiosk-1")
        reconnects.request_reconnect("kiosk-1", "ops@example.com", utcnow() - timedelta(minutes=11))
        assert beat(client, device.token).json["should_reconnect"] is False
        assert device_row("kiosk-1").reconnect_state == "expired"
        assert event_kinds("kiosk-1")[-1] == "reconnect_expired"

    def test_a_limited_heartbeat_does_not_collect_the_reconnect(self, client, make_device):
        device = make_device("kiosk-1")
        assert beat(client, device.token).status_code == 200
        reconnects.request_reconnect("kiosk-1", "ops@example.com", utcnow())
        assert beat(client, device.token).status_code == 429
        assert device_row("kiosk-1").reconnect_state == "pending"


def test_it_never_stores_the_raw_token(client, enrol):
    token = enrol()["token"]
    count = db.session.execute(
        select(func.count()).select_from(Device).where(Device.token_hash == token)
    ).scalar_one()
    assert count == 0
    assert db.session.execute(select(func.count()).select_from(DeviceEvent)).scalar_one() == 1


class TestCommonPath:
    def test_a_token_rotated_elsewhere_stops_working_at_once(self, unlimited_client, enrol):
        token = enrol("kiosk-1")["token"]
        assert beat(unlimited_client, token).status_code == 200
        # Another server process re-enrols the device: only the database knows.
        db.session.execute(
            update(Device).where(Device.uid == "kiosk-1").values(token_hash="0" * 64)
        )
        db.session.commit()
        response = beat(unlimited_client, token)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"

    def test_the_common_heartbeat_records_telemetry_and_deadlines(self, unlimited_client, enrol):
        token = enrol("kiosk-1")["token"]
        beat(unlimited_client, token, battery_level=70)  # first beat stores a telemetry sample
        first = device_row("kiosk-1")
        first_changed, first_beat = first.changed_at, first.last_heartbeat_at
        beat(unlimited_client, token, battery_level=70, uptime_seconds=5)
        same = device_row("kiosk-1")
        assert same.changed_at == first_changed  # nothing a person would see changed
        assert same.last_heartbeat_at > first_beat
        assert same.offline_due_at == same.last_heartbeat_at + timedelta(seconds=60)
        assert same.uptime_seconds == 5
        beat(unlimited_client, token, battery_level=69)
        changed = device_row("kiosk-1")
        assert changed.changed_at == changed.last_heartbeat_at
        assert changed.battery_level == 69
