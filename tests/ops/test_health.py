from datetime import timedelta

from rq.cron import CronScheduler

from fleet.extensions import db
from fleet.health import STARTED_AT_KEY, redis_client
from fleet.models import SweepRun
from fleet.timeutil import utcnow
from tests.servers import free_port


def add_sweep(seconds_ago: float) -> None:
    db.session.add(
        SweepRun(
            started_at=utcnow() - timedelta(seconds=seconds_ago),
            duration_ms=12.0,
            transitions=0,
            runner="test",
            skipped=False,
        )
    )
    db.session.commit()


def started_long_ago(app) -> None:
    app.extensions[STARTED_AT_KEY] = utcnow() - timedelta(hours=1)


def test_it_answers_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_it_is_ready_on_a_fresh_install_before_any_sweep(client, app):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready"
    assert response.json["checks"]["database"]["ok"] is True
    assert "first sweep" in response.json["checks"]["sweep"]["detail"]


def test_it_names_redis_among_the_checks_when_it_is_configured(client, app):
    checks = client.get("/readyz").json["checks"]
    assert ("redis" in checks) == bool(app.config["REDIS_URL"])


def a_live_cron_scheduler(app) -> None:
    """An RQ cron scheduler announcing itself, as `flask jobs cron` does (with Redis only)."""
    if app.config["REDIS_URL"]:
        CronScheduler(connection=redis_client(app.config["REDIS_URL"])).register_birth()


def test_it_is_ready_when_a_sweep_ran_recently(client, app):
    started_long_ago(app)
    add_sweep(seconds_ago=app.config["SWEEP_INTERVAL_SECONDS"])
    a_live_cron_scheduler(app)
    response = client.get("/readyz")
    assert response.status_code == 200
    expected = f"last sweep {app.config['SWEEP_INTERVAL_SECONDS']} s ago"
    assert response.json["checks"]["sweep"]["detail"] == expected


def test_it_is_not_ready_when_the_last_sweep_is_older_than_two_intervals(client, app):
    started_long_ago(app)
    add_sweep(seconds_ago=2 * app.config["SWEEP_INTERVAL_SECONDS"] + 5)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not_ready"
    assert response.json["checks"]["sweep"]["ok"] is False
    assert response.json["checks"]["database"]["ok"] is True


def test_it_names_a_missing_cron_scheduler_where_rq_runs_the_sweep(client, app):
    started_long_ago(app)
    add_sweep(seconds_ago=1)
    checks = client.get("/readyz").json["checks"]
    if not app.config["REDIS_URL"]:
        assert "cron" not in checks  # the embedded sweeper needs none
        return
    assert checks["cron"]["ok"] is False
    assert checks["cron"]["detail"] == "no RQ cron scheduler is alive; no sweep gets enqueued"
    a_live_cron_scheduler(app)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"]["cron"]["detail"].startswith("1 RQ cron scheduler(s) alive")


def test_it_is_not_ready_when_no_sweep_ran_long_after_start(client, app):
    started_long_ago(app)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "no sweep has ever run" in response.json["checks"]["sweep"]["detail"]


def test_it_is_not_ready_when_redis_is_down(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"] == {
        "ok": False,
        "detail": "unreachable (ConnectionError)",
    }


def test_it_is_not_ready_when_the_database_is_down(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="sqlite:////nonexistent/dir/db.sqlite3")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"]["ok"] is False
