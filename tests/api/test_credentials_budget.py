"""One allowance of failed credentials per client address, whichever API they fail on."""

from sqlalchemy import event

from device_api import device_app_of
from fleet.extensions import db
from tests.conftest import ENROLLMENT_KEY
from tests.helpers import beat


def bad_enrolment(client, address="192.0.2.1"):
    return client.post(
        "/api/devices/register",
        json={"uid": "kiosk-1"},
        headers={"X-Enrollment-Key": "wrong"},
        environ_base={"REMOTE_ADDR": address},
    )


def bad_admin_call(client, address="192.0.2.1"):
    return client.get(
        "/api/admin/devices",
        headers={"Authorization": "Bearer pbs_not-a-real-token-at-all"},
        environ_base={"REMOTE_ADDR": address},
    )


def bad_heartbeat(client, address="192.0.2.1", token="pbd_not-a-real-token-at-all"):
    return client.post(
        "/api/devices/heartbeat",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failures_on_every_api_draw_on_one_allowance(make_app):
    app = make_app(BAD_TOKEN_MAX_PER_MINUTE=2)
    client = app.test_client()
    codes = [
        bad_enrolment(client).status_code,
        bad_heartbeat(client).status_code,
        bad_admin_call(client).status_code,
        bad_enrolment(client).status_code,
    ]
    assert codes == [401, 401, 429, 429]
    # Another address has an allowance of its own (and another token, a heartbeat limit).
    assert bad_heartbeat(client, "192.0.2.2", "pbd_another-unknown-token").status_code == 401


def test_a_spent_allowance_never_refuses_the_right_enrolment_key(make_app):
    app = make_app(BAD_TOKEN_MAX_PER_MINUTE=2)
    client = app.test_client()
    assert [bad_enrolment(client).status_code for _ in range(3)] == [401, 401, 429]
    good = client.post(
        "/api/devices/register",
        json={"uid": "kiosk-1"},
        headers={"X-Enrollment-Key": ENROLLMENT_KEY},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert good.status_code == 201
    assert beat(client, good.json["token"]).status_code == 200


def test_a_refusal_says_when_to_retry_in_whole_seconds(make_app):
    app = make_app(BAD_TOKEN_MAX_PER_MINUTE=1)
    client = app.test_client()
    bad_admin_call(client)
    refused = bad_enrolment(client)
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 61
    assert refused.json["error"]["details"]["retry_after_seconds"] == retry_after


def statements_of(app) -> list[str]:
    """The SQL statements `app`'s device app sends from now on (through SQLAlchemy)."""
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        sent.append(statement)

    with device_app_of(app).app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", count)
    return sent


def test_a_flooding_address_is_refused_before_the_database(make_app, enrol_factory):
    app = make_app(BAD_TOKEN_MAX_PER_MINUTE=3, RATELIMIT_ENABLED=True)
    client = app.test_client()
    kiosk = enrol_factory(client, "kiosk-1")  # a good device behind the same address
    statements = statements_of(app)
    for n in range(3):
        assert bad_heartbeat(client, token=f"pbd_unknown-{n}").status_code == 401
    assert statements, "an unknown token is looked up in the database"
    assert bad_heartbeat(client, token="pbd_unknown-3").status_code == 429  # counted: over now
    statements.clear()
    flood = [bad_heartbeat(client, token=f"pbd_flood-{n}") for n in range(20)]
    assert {response.status_code for response in flood} == {429}
    assert statements == []
    assert 1 <= int(flood[-1].headers["Retry-After"]) <= 61
    # Another address is untouched, and the good device behind this one beats on.
    assert bad_heartbeat(client, "192.0.2.99", "pbd_other").status_code == 401
    assert bad_heartbeat(client, "192.0.2.1", kiosk).status_code == 200
