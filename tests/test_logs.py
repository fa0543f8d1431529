import json
import logging

import structlog

from fleet.services import enrolment, reconnects
from fleet.timeutil import utcnow
from tests.conftest import ENROLLMENT_KEY
from tests.helpers import HEARTBEAT


def test_it_returns_a_request_id_on_every_response(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.post("/api/devices/heartbeat").headers["X-Request-ID"]
    assert first and second and first != second


def test_it_gives_a_rate_limited_heartbeat_a_request_id_too(client, enrol):
    token = enrol()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    client.post(HEARTBEAT, headers=headers)
    limited = client.post(HEARTBEAT, headers=headers)
    assert limited.status_code == 429
    assert limited.headers["X-Request-ID"]


def test_it_keeps_a_sane_request_id_from_the_caller(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c21"})
    assert response.headers["X-Request-ID"] == "lb-7f3a9c21"


def test_it_replaces_a_request_id_that_could_forge_log_lines(client):
    forged = "x level=error event=fake " + "y" * 200
    response = client.get("/healthz", headers={"X-Request-ID": forged})
    assert len(response.headers["X-Request-ID"]) == 32
    assert " " not in response.headers["X-Request-ID"]


def test_it_writes_one_json_access_line_per_request_with_its_id(logged):
    app, output = logged("json")
    response = app.test_client().get("/healthz")
    lines = [json.loads(line) for line in output().splitlines()]
    access = [line for line in lines if line["event"] == "request"]
    assert len(access) == 1
    assert access[0]["method"] == "GET"
    assert access[0]["path"] == "/healthz"
    assert access[0]["status"] == 200
    assert access[0]["duration_ms"] >= 0
    assert access[0]["request_id"] == response.headers["X-Request-ID"]


def test_it_logs_a_transition_with_the_request_id_of_the_heartbeat_that_made_it(logged):
    app, output = logged("json")
    client = app.test_client()
    with app.app_context():
        token = enrolment.add_device("kiosk-1", utcnow())
    response = client.post(HEARTBEAT, headers={"Authorization": f"Bearer {token}"})
    lines = [json.loads(line) for line in output().splitlines()]
    changes = [line for line in lines if line["event"] == "status_changed"]
    assert changes[-1]["uid"] == "kiosk-1"
    assert changes[-1]["source"] == "device"
    assert changes[-1]["request_id"] == response.headers["X-Request-ID"]


def test_it_logs_who_asked_for_a_reconnect(logged):
    app, output = logged("json")
    with app.app_context():
        enrolment.add_device("kiosk-1", utcnow())
        reconnects.request_reconnect("kiosk-1", "ops@example.com", utcnow())
    lines = [json.loads(line) for line in output().splitlines()]
    request = next(line for line in lines if line["event"] == "reconnect_requested")
    assert request["actor"] == "ops@example.com"
    assert request["source"] == "operator"


def test_it_never_logs_a_token_or_the_enrolment_key(logged):
    app, output = logged("console")
    client = app.test_client()
    register = client.post(
        "/api/devices/register",
        json={"uid": "kiosk-1", "enrollment_key": ENROLLMENT_KEY},
        headers={"X-Enrollment-Key": ENROLLMENT_KEY},
    )
    token = register.json["token"]
    client.post(HEARTBEAT, json={"battery_level": 50}, headers={"Authorization": f"Bearer {token}"})
    client.post(HEARTBEAT, headers={"Authorization": f"Bearer {token}x"})
    # Code that carelessly logs a request's secrets is redacted too.
    logging.getLogger("careless").warning("auth was Bearer %s", token)
    structlog.get_logger("careless").warning("oops", authorization=f"Bearer {token}", token=token)
    logged_text = output()
    assert "registered" in logged_text and "path=/api/devices/heartbeat" in logged_text
    assert token not in logged_text
    assert token[4:20] not in logged_text
    assert ENROLLMENT_KEY not in logged_text
