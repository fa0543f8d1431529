from sqlalchemy import select

from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.tokens import hash_token
from tests.conftest import ENROLLMENT_KEY
from tests.helpers import device_row, event_kinds, events_of

REGISTER = "/api/devices/register"


def register(client, body, key=ENROLLMENT_KEY):
    headers = {"X-Enrollment-Key": key} if key else {}
    return client.post(REGISTER, json=body, headers=headers)


def test_it_enrols_a_device_and_shows_its_token_once(client):
    response = register(client, {"uid": "kiosk-1", "name": "Lobby kiosk", "site": "HQ"})
    assert response.status_code == 201
    body = response.json
    assert body["uid"] == "kiosk-1"
    assert body["status"] == "connected"
    assert body["heartbeat_interval_seconds"] == 30
    device = device_row("kiosk-1")
    assert (device.name, device.site, device.status) == ("Lobby kiosk", "HQ", "connected")
    assert device.token_hash == hash_token(body["token"])
    assert body["token"] not in device.token_hash


def test_it_accepts_the_enrolment_key_in_the_body(client):
    response = register(client, {"uid": "kiosk-1", "enrollment_key": ENROLLMENT_KEY}, key=None)
    assert response.status_code == 201


def test_it_refuses_a_wrong_or_missing_enrolment_key(client):
    assert register(client, {"uid": "kiosk-1"}, key="wrong").status_code == 401
    response = register(client, {"uid": "kiosk-1"}, key=None)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert db.session.execute(select(Device)).first() is None


def test_it_names_a_missing_uid(client):
    response = register(client, {"name": "no uid"})
    assert response.status_code == 422
    assert "uid" in response.json["error"]["details"]["fields"]


def test_it_refuses_a_uid_with_odd_characters(client):
    response = register(client, {"uid": "kiosk 1/<script>"})
    assert response.status_code == 422
    assert "uid" in response.json["error"]["details"]["fields"]


def re_register(client, body, token):
    headers = {"X-Enrollment-Key": ENROLLMENT_KEY, "Authorization": f"Bearer {token}"}
    return client.post(REGISTER, json=body, headers=headers)


def test_it_rotates_the_token_when_a_known_uid_re_enrols_with_it(client):
    old = register(client, {"uid": "kiosk-1"}).json["token"]
    response = re_register(client, {"uid": "kiosk-1", "site": "Annex"}, old)
    assert response.status_code == 201
    assert response.json["created"] is False
    new = response.json["token"]
    assert new != old
    beat = client.post("/api/devices/heartbeat", headers={"Authorization": f"Bearer {old}"})
    assert beat.status_code == 401
    beat = client.post("/api/devices/heartbeat", headers={"Authorization": f"Bearer {new}"})
    assert beat.status_code == 200
    assert device_row("kiosk-1").site == "Annex"
    assert event_kinds("kiosk-1") == ["registered", "re_enrolled"]


def test_the_fleet_key_alone_cannot_take_a_known_uid_over(client):
    token = register(client, {"uid": "kiosk-1"}).json["token"]
    for attempt in (
        register(client, {"uid": "kiosk-1"}),
        re_register(client, {"uid": "kiosk-1"}, "pbd_guess"),
    ):
        assert attempt.status_code == 409
        assert attempt.json["error"]["code"] == "already_enrolled"
        assert "current token" in attempt.json["error"]["message"]
    beat = client.post("/api/devices/heartbeat", headers={"Authorization": f"Bearer {token}"})
    assert beat.status_code == 200  # the real device is untouched
    assert event_kinds("kiosk-1") == ["registered"]


def test_refused_takeovers_spend_the_addresss_allowance(make_app):
    app = make_app(BAD_TOKEN_MAX_PER_MINUTE=2)
    client = app.test_client()
    register(client, {"uid": "kiosk-1"})
    codes = [register(client, {"uid": "kiosk-1"}).status_code for _ in range(3)]
    assert codes == [409, 409, 429]


def test_an_operators_leave_lets_a_device_that_lost_its_token_enrol_once(client, runner):
    register(client, {"uid": "kiosk-1"})
    result = runner.invoke(
        args=["devices", "allow-re-enrolment", "kiosk-1", "--by", "ops@example.com"]
    )
    assert result.exit_code == 0, result.output
    assert "may enrol again" in result.output
    again = register(client, {"uid": "kiosk-1"})
    assert again.status_code == 201
    assert register(client, {"uid": "kiosk-1"}).status_code == 409  # the leave was used
    rows = db.session.execute(
        select(DeviceEvent.kind, DeviceEvent.actor, DeviceEvent.source).order_by(DeviceEvent.id)
    ).all()
    assert [tuple(row) for row in rows] == [
        ("registered", None, "device"),
        ("re_enrolment_allowed", "ops@example.com", "operator"),
        ("re_enrolled", "ops@example.com", "device"),
    ]


def test_a_leave_for_an_unknown_uid_is_refused(runner):
    result = runner.invoke(args=["devices", "allow-re-enrolment", "nobody"])
    assert result.exit_code != 0
    assert "no device with uid 'nobody'" in result.output


def test_new_enrolments_are_capped_per_address(make_app):
    app = make_app(ENROLL_MAX_PER_MINUTE=3)
    client = app.test_client()
    codes = [register(client, {"uid": f"kiosk-{n}"}).status_code for n in range(4)]
    assert codes == [201, 201, 201, 429]
    elsewhere = client.post(
        REGISTER,
        json={"uid": "kiosk-9"},
        headers={"X-Enrollment-Key": ENROLLMENT_KEY},
        environ_base={"REMOTE_ADDR": "192.0.2.50"},
    )
    assert elsewhere.status_code == 201


def test_re_enrolments_of_one_uid_are_capped(make_app):
    app = make_app(REENROLL_MAX_PER_HOUR=3)
    client = app.test_client()
    token = register(client, {"uid": "kiosk-1"}).json["token"]
    codes = []
    for _ in range(3):
        response = re_register(client, {"uid": "kiosk-1"}, token)
        codes.append(response.status_code)
        token = response.json.get("token", token)
    assert codes == [201, 201, 429]


def test_re_enrolling_a_disconnected_device_connects_it_with_an_event(client, make_device):
    device = make_device("kiosk-1", status="disconnected")
    assert re_register(client, {"uid": "kiosk-1"}, device.token).status_code == 201
    assert device_row("kiosk-1").status == "connected"
    assert events_of("kiosk-1") == [("disconnected", "connected", "device")]
