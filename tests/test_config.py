import pytest

from fleet.config import ConfigError, load_config


def test_it_defaults_to_the_embedded_setup(tmp_path):
    config = load_config({}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/pulseboard.sqlite3"
    assert config["REDIS_URL"] is None
    assert config["EMBEDDED_SWEEPER"] is True
    assert (config["HEARTBEAT_INTERVAL_SECONDS"], config["GRACE_PERIOD_SECONDS"]) == (30, 30)
    assert config["DISCONNECT_AFTER_SECONDS"] == 300


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
        ({"RATELIMIT_ENABLED": "maybe"}, "RATELIMIT_ENABLED must be true or false"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of debug, info"),
        ({"LOG_FORMAT": "jsn"}, "LOG_FORMAT must be one of console, json"),
        ({"PULSEBOARD_ENV": "production"}, "SECRET_KEY must be set in production"),
        (
            {"PULSEBOARD_ENV": "production", "SECRET_KEY": "s3cret"},
            "ENROLLMENT_KEY must be set in production",
        ),
    ],
)
def test_it_fails_loudly_on_bad_values(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env, str(tmp_path))


def test_it_pins_postgres_urls_to_psycopg3(tmp_path):
    config = load_config({"DATABASE_URL": "postgres://u@h/db"}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_it_turns_the_embedded_sweeper_off_when_redis_is_configured(tmp_path):
    config = load_config({"REDIS_URL": "redis://localhost:6379/0"}, str(tmp_path))
    assert config["EMBEDDED_SWEEPER"] is False
