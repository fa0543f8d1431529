import pytest

from fleet.config import ConfigError, load_config

LONG = "x" * 32


def test_it_defaults_to_the_embedded_setup(tmp_path):
    config = load_config({}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/pulseboard.sqlite3"
    assert config["REDIS_URL"] is None
    assert config["EMBEDDED_SWEEPER"] is True
    assert (config["HEARTBEAT_INTERVAL_SECONDS"], config["GRACE_PERIOD_SECONDS"]) == (30, 30)
    assert config["DISCONNECT_AFTER_SECONDS"] == 300
    assert config["HEARTBEAT_JITTER_PERCENT"] == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HEARTBEAT_INTERVAL_SECONDS": "thirty"},
            "HEARTBEAT_INTERVAL_SECONDS must be a whole number",
        ),
        ({"HEARTBEAT_INTERVAL_SECONDS": "0"}, "HEARTBEAT_INTERVAL_SECONDS must be at least 1"),
        ({"DISCONNECT_AFTER_SECONDS": "60"}, "DISCONNECT_AFTER_SECONDS must be greater than"),
        ({"FLAP_THRESHOLD": "-1"}, "FLAP_THRESHOLD must be at least 1"),
        ({"HEARTBEAT_JITTER_PERCENT": "21"}, "HEARTBEAT_JITTER_PERCENT must be at most 20, got 21"),
        ({"HEARTBEAT_JITTER_PERCENT": "-1"}, "HEARTBEAT_JITTER_PERCENT must be at least 0"),
        ({"RATELIMIT_ENABLED": "maybe"}, "RATELIMIT_ENABLED must be true or false"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of 'debug', 'info'"),
        ({"LOG_FORMAT": "jsn"}, "LOG_FORMAT must be one of 'console' or 'json'"),
        ({"PULSEBOARD_ENV": "prod"}, "PULSEBOARD_ENV must be one of 'development' or 'production'"),
        ({"PULSEBOARD_ENV": "staging"}, "PULSEBOARD_ENV must be one of 'development' or 'production'"),
        ({"PULSEBOARD_ENV": "production"}, "SECRET_KEY must be set in production"),
        (
            {"PULSEBOARD_ENV": "production", "SECRET_KEY": "s3cret"},
            "SECRET_KEY must be at least 32 characters in production, got 6",
        ),
        (
            {"PULSEBOARD_ENV": "production", "SECRET_KEY": LONG},
            "ENROLLMENT_KEY must be set in production",
        ),
        (
            {"PULSEBOARD_ENV": "production", "SECRET_KEY": LONG, "ENROLLMENT_KEY": "short"},
            "ENROLLMENT_KEY must be at least 32 characters",
        ),
        (
            {"PULSEBOARD_ENV": "production", "SECRET_KEY": LONG, "ENROLLMENT_KEY": LONG},
            "METRICS_TOKEN must be set in production, or METRICS_PUBLIC=true",
        ),
    ],
)
def test_it_fails_loudly_on_bad_values(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env, str(tmp_path))


def test_production_runs_on_long_secrets_with_metrics_guarded_or_public_by_choice(tmp_path):
    base = {"SECRET_KEY": LONG, "ENROLLMENT_KEY": LONG + "e"}
    for env in ({"METRICS_TOKEN": LONG + "m"}, {"METRICS_PUBLIC": "true"}):
        config = load_config({"PULSEBOARD_ENV": "Production", **base, **env}, str(tmp_path))
        assert config["PULSEBOARD_ENV"] == "production"


def test_it_pins_postgres_urls_to_psycopg3(tmp_path):
    config = load_config({"DATABASE_URL": "postgres://u@h/db"}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_it_turns_the_embedded_sweeper_off_when_redis_is_configured(tmp_path):
    config = load_config({"REDIS_URL": "redis://localhost:6379/0"}, str(tmp_path))
    assert config["EMBEDDED_SWEEPER"] is False
