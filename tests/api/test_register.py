from sqlalchemy import select

from fleet.extensions import db
from fleet.models import Device
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


def test_it_rotates_the_token_when_a_known_uid_re_enrols(client):
    old = register(client, {"uid": "kiosk-1"}).json["token"]
    response = register(client, {"uid": "kiosk-1", "site": "Annex"})
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


def test_re_enrolling_a_disconnected_device_connects_it_with_an_event(client, make_device):
    make_device("kiosk-1", status="disconnected")
    assert register(client, {"uid": "kiosk-1"}).status_code == 201
    assert device_row("kiosk-1").status == "connected"
    assert events_of("kiosk-1") == [("disconnected", "connected", "device")]
