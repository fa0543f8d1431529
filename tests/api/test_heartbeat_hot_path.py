"""The heartbeat's hot path: its one-statement update, its own rate limits, its quiet logs."""

import io
import logging
import threading

import psycopg
import pytest

from device_api import device_app_of
from fleet.extensions import AUTOCOMMIT_BIND, db
from fleet.ratelimits import heartbeat_limits
from tests.conftest import ENROLLMENT_KEY
from tests.helpers import beat, device_row
from tests.servers import free_port


def test_the_common_heartbeat_stores_free_form_telemetry_and_keeps_it(unlimited_client, enrol):
    token = enrol("kiosk-1")["token"]
    beat(unlimited_client, token)  # the first heartbeat takes the full path (telemetry sample)
    assert beat(unlimited_client, token, extra={"screen": "on", "temp": 41.5}).status_code == 200
    assert device_row("kiosk-1").extra == {"screen": "on", "temp": 41.5}
    assert beat(unlimited_client, token, battery_level=50).status_code == 200
    assert device_row("kiosk-1").extra == {"screen": "on", "temp": 41.5}


def test_a_heartbeat_after_the_database_dropped_its_connections_is_refused_once(
    backend, unlimited_client, enrol
):
    """A database restart costs one 503 per dead pooled connection, never a 500 or a hang."""
    if backend != "postgres":
        pytest.skip("SQLite has no server connections to drop")
    token = enrol("kiosk-1")["token"]
    beat(unlimited_client, token)
    assert beat(unlimited_client, token).status_code == 200  # a pooled connection now exists
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert (True,) in dropped
    answers = [beat(unlimited_client, token) for _ in range(3)]
    refused = [a for a in answers if a.status_code != 200]
    assert refused, "the dead connection was reused without an error"
    assert all(a.status_code == 503 for a in refused)
    assert all(a.json["error"]["code"] == "database_unavailable" for a in refused)
    assert answers[-1].status_code == 200


def test_a_heartbeat_while_the_database_is_unreachable_is_told_to_retry(backend, make_app):
    unreachable = {
        "sqlite": "sqlite:////nonexistent/dir/pulseboard.sqlite3",
        "postgres": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone",
    }[backend]
    app = make_app(SQLALCHEMY_DATABASE_URI=unreachable, RATELIMIT_ENABLED=False)
    with app.app_context():
        response = beat(app.test_client(), "pbd_any_token_at_all_0000")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "database_unavailable"


def test_a_request_that_finds_every_connection_busy_is_told_to_retry(make_app):
    pool_options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}
    app = make_app(RATELIMIT_ENABLED=False, DEVICE_ENGINE_OPTIONS=pool_options)
    with device_app_of(app).app_context(), db.engine.connect():  # the only connection, busy
        response = app.test_client().post(
            "/api/devices/register",
            json={"uid": "kiosk-1"},
            headers={"X-Enrollment-Key": ENROLLMENT_KEY},
        )
    assert response.status_code == 503
    assert response.json["error"]["code"] == "database_busy"
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("interval", "cap", "expected"),
    [
        (10, 10, ["1 per 10 second"]),  # the defaults: at most 7 a minute get through
        (1, 10, ["1 per 1 second", "10 per 1 minute"]),
        (7, 9, ["1 per 7 second"]),
        (6, 9, ["1 per 6 second", "9 per 1 minute"]),
        (0, 3, ["3 per 1 minute"]),
    ],
)
def test_the_cap_per_minute_is_checked_only_when_the_interval_does_not_imply_it(
    interval, cap, expected
):
    assert [str(limit) for limit in heartbeat_limits(interval, cap)] == expected


def test_the_cap_per_minute_refuses_when_the_interval_does_not_imply_it(
    make_app, enrol_factory, limit_clock
):
    app = make_app(HEARTBEAT_MIN_INTERVAL_SECONDS=1, HEARTBEAT_MAX_PER_MINUTE=2)
    with app.app_context():
        client = app.test_client()
        token = enrol_factory(client, "kiosk-1")
        answers = []
        for _ in range(3):
            answers.append(beat(client, token))
            limit_clock.shift(1.05)  # past the minimum interval each time
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1].json["error"]["details"]["limit"] == "2 per 1 minute"


def test_limits_hold_in_memory_while_redis_is_unreachable(backend, make_app, enrol_factory):
    if backend != "postgres":
        pytest.skip("limits live in memory on the embedded default anyway")
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with app.app_context():
        client = app.test_client()
        token = enrol_factory(client, "kiosk-1")
        codes = [beat(client, token).status_code for _ in range(2)]
        refused = beat(client, "not-a-token")
    assert codes == [200, 429]
    assert refused.status_code == 401


def test_a_heartbeat_over_its_limit_says_which_limit_and_when_to_retry(client, enrol):
    token = enrol("kiosk-1")["token"]
    beat(client, token)
    response = beat(client, token)
    assert response.status_code == 429
    error = response.json["error"]
    assert error["details"]["limit"] == "1 per 10 second"
    # Rounded up, with half a second for Redis's rounding of a key's time to live.
    assert 1 <= error["details"]["retry_after_seconds"] <= 11
    assert response.headers["Retry-After"] == str(error["details"]["retry_after_seconds"])


@pytest.fixture
def access_lines(make_app, enrol_factory):
    """At a log level: a client, an enrolled device's token, and the access lines logged since."""

    def build(level):
        app = make_app(LOG_LEVEL=level, LOG_FORMAT="json", RATELIMIT_ENABLED=True)
        stream = io.StringIO()
        logging.getLogger().handlers[0].setStream(stream)
        client = app.test_client()
        with app.app_context():
            token = enrol_factory(client, "kiosk-1")
        enrolled = len(stream.getvalue().splitlines())

        def since_enrolment():
            lines = stream.getvalue().splitlines()[enrolled:]
            return [line for line in lines if '"request"' in line]

        return client, token, since_enrolment

    return build


def test_accepted_heartbeats_write_no_access_line_at_info(access_lines):
    client, token, lines = access_lines("INFO")
    assert beat(client, token).status_code == 200
    assert lines() == []
    assert beat(client, token).status_code == 429
    assert beat(client, "not-a-token").status_code == 401
    refused = lines()
    assert len(refused) == 2
    assert '"status": 429' in refused[0] and '"status": 401' in refused[1]


def test_accepted_heartbeats_are_logged_at_debug(access_lines):
    client, token, lines = access_lines("DEBUG")
    assert beat(client, token).status_code == 200
    logged = lines()
    assert len(logged) == 1
    assert '"level": "debug"' in logged[0] and '"path": "/api/devices/heartbeat"' in logged[0]


def test_the_device_app_runs_only_the_hooks_a_heartbeat_needs(app):
    """Request ids, access lines and metrics; no session, login, CSRF, limiter or URL checks."""
    device = device_app_of(app)

    def names(registry):
        return sorted(getattr(hook, "func", hook).__name__ for hook in registry.get(None, []))

    assert device.secret_key is None  # Flask opens a null session: nothing to sign or save
    assert names(device.before_request_funcs) == ["_bind_request_id"]
    assert names(device.after_request_funcs) == ["_log_access", "count_request"]
    assert names(device.teardown_request_funcs) == ["_unbind_request_id"]
    assert set(device.extensions) == {"sqlalchemy", "pulseboard.limits", "pulseboard.flood_guard"}


def test_heartbeat_answers_set_no_cookie_and_do_not_vary_on_one(client, enrol):
    token = enrol("kiosk-1")["token"]
    response = beat(client, token)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


def test_the_dashboard_still_refuses_a_post_without_its_csrf_token(client, enrol):
    token = enrol("kiosk-1")["token"]
    assert beat(client, token).status_code == 200
    assert client.post("/logout").status_code == 400


def test_the_dashboard_varies_on_the_session_cookie(client):
    page = client.get("/")
    assert page.status_code == 302 and "Cookie" in page.headers["Vary"]


def test_threads_hold_no_more_connections_than_the_pool_keeps_and_give_them_back(
    backend, make_app, enrol_factory
):
    """More threads than pooled connections, in step: every heartbeat answers, none times out."""
    if backend != "postgres":
        pytest.skip("only heartbeats on PostgreSQL hold a connection between requests")
    pool_options = {"pool_size": 2, "max_overflow": 2, "pool_timeout": 2}
    app = make_app(RATELIMIT_ENABLED=False, DEVICE_ENGINE_OPTIONS=pool_options)
    threads, rounds = 8, 3
    tokens = [enrol_factory(app.test_client(), f"kiosk-{n}") for n in range(threads)]
    in_step = threading.Barrier(threads, timeout=20)
    answers: list[int] = []

    def send_heartbeats(token: str) -> None:
        client = app.test_client()
        beat(client, token)  # the first heartbeat takes the full path (telemetry sample)
        for _ in range(rounds):
            in_step.wait()
            answers.append(beat(client, token).status_code)

    workers = [threading.Thread(target=send_heartbeats, args=(token,)) for token in tokens]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert answers == [200] * threads * rounds
    with device_app_of(app).app_context():
        assert db.engines[AUTOCOMMIT_BIND].pool.checkedout() == 0
