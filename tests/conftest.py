"""Fixtures in the flaskr style: `app`, `client`, `runner`, plus factories.

Every test that takes `app` runs twice: on SQLite with in-process limits, and
on a real PostgreSQL with Redis, both started here from installed binaries.
The schema is built by the migrations, so the migrations are tested too.
Without the binaries the PostgreSQL runs are skipped with the reason, unless
REQUIRE_SERVICES=1 (as in CI), which makes the skip a failure.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from device_api import device_app_of
from fleet import create_app
from fleet.extensions import db
from fleet.models import Device
from fleet.schema import upgrade
from fleet.services import device_state, enrolment
from fleet.timeutil import utcnow
from jobs import embedded
from tests import servers
from tests.helpers import disable_rate_limits

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
ENROLLMENT_KEY = "test-enrollment-key"


def unavailable(reason: str) -> None:
    """Skip, or fail when the run demands real services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


def base_env(database_url: str, redis_url: str | None = None) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "ENROLLMENT_KEY": ENROLLMENT_KEY,
        "LOG_LEVEL": "WARNING",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


TEST_OVERRIDES = {"TESTING": True, "EMBEDDED_SWEEPER": False, "WTF_CSRF_ENABLED": True}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[servers.PostgresServer | None]:
    try:
        server = servers.start_postgres()
    except servers.ServerUnavailable:
        yield None
        return
    except Exception as error:  # a broken install is reported, not hidden
        pytest.exit(f"could not start PostgreSQL: {error}", returncode=3)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.RedisServer | None]:
    try:
        server = servers.start_redis()
    except servers.ServerUnavailable:
        yield None
        return
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    app = create_app(TEST_OVERRIDES, env=base_env(f"sqlite:///{path}"))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database(postgres_server: servers.PostgresServer | None) -> str | None:
    """A PostgreSQL database migrated once; tests truncate it before use."""
    if postgres_server is None:
        return None
    url = postgres_server.create_database("pulseboard_test")
    app = create_app(TEST_OVERRIDES, env=base_env(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app_env(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    sqlite_template: Path,
) -> dict[str, str]:
    """The environment for one test's app, on a clean database (and Redis)."""
    if backend == "sqlite":
        path = tmp_path / "pulseboard.sqlite3"
        shutil.copy(sqlite_template, path)
        return base_env(f"sqlite:///{path}")
    database_url = request.getfixturevalue("postgres_database")
    redis = request.getfixturevalue("redis_server")
    if database_url is None or redis is None:
        unavailable("PostgreSQL or Redis binaries are not installed")
    _reset_postgres(database_url)
    _reset_redis(redis.url)
    return base_env(database_url, redis.url)


def _reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_tables()} RESTART IDENTITY CASCADE")


def _tables() -> str:
    """Every table the models declare, so that a table added later starts each test empty too."""
    import fleet.alert_models
    import fleet.availability_models
    import fleet.hours_models  # noqa: F401

    return ", ".join(table.name for table in db.metadata.sorted_tables)


def _reset_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def make_app(app_env: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Build an app on this test's database with extra config overrides."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app({**TEST_OVERRIDES, **overrides}, env=app_env)
        made.append(app)
        return app

    yield make
    for app in made:
        # A loop left running would work on the next test's database.
        embedded.stop_all(app)
        for each in (app, device_app_of(app)):
            with each.app_context():
                db.session.remove()
                for engine in db.engines.values():
                    engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def enrol(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Register a device through the API; returns the response body (with its token)."""

    def enrol(uid: str = "kiosk-1", **fields: Any) -> dict[str, Any]:
        response = client.post(
            "/api/devices/register",
            json={"uid": uid, **fields},
            headers={"X-Enrollment-Key": ENROLLMENT_KEY},
        )
        assert response.status_code == 201, response.json
        return response.json

    return enrol


@pytest.fixture
def make_device(app: Flask) -> Callable[..., Device]:
    """Register a device at `now` through the service, then force any column for the scenario."""

    def make(uid: str = "kiosk-1", now: datetime | None = None, **columns: Any) -> Device:
        enrolled = enrolment.register_device(uid, now or utcnow(), site=columns.pop("site", None))
        if columns:
            db.session.execute(update(Device).where(Device.uid == uid).values(**columns))
            db.session.commit()
        device = device_state.get_device(uid)
        device.token = enrolled.token
        return device

    return make


@pytest.fixture
def enrol_factory() -> Callable[[FlaskClient, str], str]:
    """Register through any client; returns the token."""

    def enrol(client: FlaskClient, uid: str) -> str:
        response = client.post(
            "/api/devices/register", json={"uid": uid}, headers={"X-Enrollment-Key": ENROLLMENT_KEY}
        )
        assert response.status_code == 201, response.json
        return response.json["token"]

    return enrol


class LimitClock:
    """Moves the clock rate limits are counted by.

    Limits in this process's memory follow Python's clock, which time-machine
    moves at once. Redis expires its keys by its own clock, which no test can
    move: there, a shift is a real wait.
    """

    def __init__(self, in_redis: bool) -> None:
        self.in_redis = in_redis
        self.traveller = None if in_redis else time_machine.travel(time.time(), tick=True)

    def shift(self, seconds: float) -> None:
        if self.traveller is None:
            time.sleep(seconds)
        else:
            self.coordinates.shift(seconds)

    def __enter__(self) -> LimitClock:
        if self.traveller is not None:
            self.coordinates = self.traveller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.traveller is not None:
            self.traveller.stop()


@pytest.fixture
def limit_clock(app_env: dict[str, str]) -> Iterator[LimitClock]:
    """The clock of this test's rate limits, to move past a limit's window."""
    with LimitClock(in_redis="REDIS_URL" in app_env) as clock:
        yield clock


@pytest.fixture
def unlimited_client(app: Flask) -> FlaskClient:
    """A client for tests that send many heartbeats and are not about rate limits."""
    disable_rate_limits(app)
    return app.test_client()


@pytest.fixture
def receiver(app: Flask) -> Iterator[Any]:
    """A real webhook receiver on a loopback port; channels may point at it."""
    from tests.alert_servers import WebhookReceiver

    app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = True
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def logged(make_app):
    """An app logging at INFO in `fmt`, and a function returning what it has logged so far."""

    def build(fmt="console"):
        app = make_app(LOG_LEVEL="INFO", LOG_FORMAT=fmt)
        stream = io.StringIO()
        logging.getLogger().handlers[0].setStream(stream)
        return app, stream.getvalue

    return build
