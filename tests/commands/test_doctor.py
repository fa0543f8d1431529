import pytest
from rq import Queue, Worker
from rq.cron import CronScheduler

from fleet.config import DEFAULT_ENROLLMENT_KEY, DEFAULT_SECRET_KEY
from fleet.extensions import db
from fleet.health import redis_client
from fleet.models import SweepRun
from fleet.timeutil import utcnow
from tests.servers import free_port


@pytest.fixture
def empty_database_url(backend, tmp_path, request):
    """A database that exists but was never migrated."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("PostgreSQL binaries are not installed")
    return server.create_database("pulseboard_unmigrated")


def add_recent_sweep() -> None:
    db.session.add(
        SweepRun(started_at=utcnow(), duration_ms=5.0, transitions=0, runner="test", skipped=False)
    )
    db.session.commit()


def start_background_processes(redis_url: str) -> None:
    """Register an RQ worker and a cron scheduler the way the real ones announce themselves."""
    connection = redis_client(redis_url)
    Worker([Queue("default", connection=connection)], connection=connection).register_birth()
    CronScheduler(connection=connection).register_birth()


def test_it_reports_an_unmigrated_database(make_app, empty_database_url):
    app = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[FAIL] migrations: the database is not migrated" in result.output
    assert "fix: run `flask db upgrade`" in result.output


def test_it_passes_a_migrated_installation_with_recent_sweeps(app, runner):
    add_recent_sweep()
    if app.config["REDIS_URL"]:
        start_background_processes(app.config["REDIS_URL"])
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    assert "[ ok ] migrations: at head" in result.output
    assert "[ ok ] sweep: last sweep" in result.output
    assert "No problems found." in result.output
    if app.config["REDIS_URL"]:
        assert "[ ok ] workers: 1 RQ worker(s) alive" in result.output
        assert "[ ok ] cron: 1 RQ cron scheduler(s) alive" in result.output


def test_it_reports_sweeps_that_stopped(app, runner):
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[FAIL] sweep: no sweep has ever run" in result.output


def test_it_reports_missing_workers_and_cron_only_when_redis_is_used(app, runner):
    add_recent_sweep()
    result = runner.invoke(args=["doctor"])
    if not app.config["REDIS_URL"]:
        # The embedded sweeper needs neither; the sweep check covers it.
        assert "workers:" not in result.output and "cron:" not in result.output
        return
    assert result.exit_code == 1
    assert "[FAIL] workers: no RQ worker is alive" in result.output
    assert "fix: start `flask jobs worker`" in result.output
    assert "[FAIL] cron: no RQ cron scheduler is alive" in result.output


def test_it_reports_redis_down(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with app.app_context():
        add_recent_sweep()
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[FAIL] redis: unreachable" in result.output


def test_it_reports_per_process_rate_limits_with_several_web_workers(app, runner, monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    result = runner.invoke(args=["doctor"])
    if app.config["REDIS_URL"]:
        assert "[ ok ] rate_limits: stored in Redis" in result.output
    else:
        assert "[FAIL] rate_limits: kept in each process's memory" in result.output
        assert "set REDIS_URL" in result.output


def test_it_warns_about_default_secrets_outside_production(make_app):
    app = make_app(SECRET_KEY=DEFAULT_SECRET_KEY, ENROLLMENT_KEY=DEFAULT_ENROLLMENT_KEY)
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert (
        "[warn] secrets: SECRET_KEY and ENROLLMENT_KEY still the shipped default" in result.output
    )


def test_it_fails_default_secrets_in_production(make_app):
    app = make_app(PULSEBOARD_ENV="production", SECRET_KEY=DEFAULT_SECRET_KEY)
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[FAIL] secrets: SECRET_KEY still the shipped default" in result.output
