import os

import pytest

from fleet import create_app
from fleet.config import (
    COMMAND_KIND_NAMES,
    DEFAULT_SECRET_KEY,
    ConfigError,
    Settings,
    limit_storage_uri,
    load_config,
)

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
        (
            {"PULSEBOARD_ENV": "staging"},
            "PULSEBOARD_ENV must be one of 'development' or 'production'",
        ),
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


# The whole-number variables as operators know them: (variable, default, minimum).
WHOLE_NUMBERS = [
    ("HEARTBEAT_INTERVAL_SECONDS", 30, 1),
    ("GRACE_PERIOD_SECONDS", 30, 0),
    ("DISCONNECT_AFTER_SECONDS", 300, 1),
    ("HEARTBEAT_MIN_INTERVAL_SECONDS", 10, 0),
    ("HEARTBEAT_JITTER_PERCENT", 5, 0),
    ("HEARTBEAT_MAX_PER_MINUTE", 10, 1),
    ("BAD_TOKEN_MAX_PER_MINUTE", 30, 1),
    ("ENROLL_MAX_PER_MINUTE", 60, 1),
    ("REENROLL_MAX_PER_HOUR", 10, 1),
    ("RECONNECT_DELAY_SECONDS", 5, 0),
    ("RECONNECT_TTL_SECONDS", 600, 1),
    ("COMMAND_TTL_SECONDS", 600, 1),
    ("COMMAND_ACK_TTL_SECONDS", 600, 1),
    ("SCREENSHOT_MAX_BYTES", 2_000_000, 1024),
    ("BULK_RECONNECT_SPREAD_SECONDS", 60, 0),
    ("BULK_CHUNK_SIZE", 500, 1),
    ("BULK_INLINE_MAX", 2000, 0),
    ("BULK_STALL_SECONDS", 120, 10),
    ("FLAP_WINDOW_SECONDS", 3600, 1),
    ("FLAP_THRESHOLD", 4, 1),
    ("SWEEP_INTERVAL_SECONDS", 5, 1),
    ("PING_RECHECK_SECONDS", 60, 1),
    ("TELEMETRY_SAMPLE_SECONDS", 300, 1),
    ("TELEMETRY_RETENTION_SECONDS", 86_400, 60),
    ("MAX_BODY_BYTES", 65_536, 1024),
    ("EXTRA_MAX_BYTES", 4096, 0),
    ("EXTRA_MAX_DEPTH", 10, 1),
    ("GUNICORN_THREADS", 8, 1),
    ("ALERT_DELIVERY_INTERVAL_SECONDS", 2, 1),
    ("ALERT_GROUP_WAIT_SECONDS", 3, 0),
    ("ALERT_RETRY_FOR_SECONDS", 86_400, 60),
    ("ALERT_CLAIM_TIMEOUT_SECONDS", 120, 5),
    ("ALERT_SEND_TIMEOUT_SECONDS", 10, 1),
    ("ALERT_MONITORING_GAP_SECONDS", 180, 10),
    ("EVENT_RETENTION_DAYS", 93, 2),
    ("ROLLUP_RETENTION_DAYS", 400, 2),
    ("PRUNE_INTERVAL_SECONDS", 3600, 10),
]
# Two variables feed Flask config keys of other names.
FLASK_KEY = {"MAX_BODY_BYTES": "MAX_CONTENT_LENGTH", "GUNICORN_THREADS": "DEVICE_POOL_SIZE"}
BOOLEANS = [
    ("RATELIMIT_ENABLED", True),
    ("METRICS_PUBLIC", False),
    ("ALERT_ALLOW_PRIVATE_TARGETS", False),
]


def settings_field(variable: str) -> str:
    return variable.lower()


def test_the_table_above_covers_every_whole_number_and_boolean_setting():
    numbers = {name for name, field in Settings.model_fields.items() if field.annotation is int}
    flags = {name for name, field in Settings.model_fields.items() if field.annotation is bool}
    assert numbers == {settings_field(variable) for variable, _, _ in WHOLE_NUMBERS}
    assert flags == {settings_field(variable) for variable, _ in BOOLEANS}


@pytest.mark.parametrize(("variable", "default", "minimum"), WHOLE_NUMBERS)
def test_a_whole_number_setting_defaults_when_unset_empty_or_blank(
    tmp_path, variable, default, minimum
):
    for env in ({}, {variable: ""}, {variable: "   "}):
        config = load_config(env, str(tmp_path))
        assert config[FLASK_KEY.get(variable, variable)] == default


@pytest.mark.parametrize(("variable", "default", "minimum"), WHOLE_NUMBERS)
def test_a_whole_number_setting_takes_its_minimum_and_refuses_less_or_words(
    tmp_path, variable, default, minimum
):
    # The timings are held under DISCONNECT_AFTER_SECONDS, which must exceed interval +
    # grace, so it can go no lower than 2.
    roomy = {"DISCONNECT_AFTER_SECONDS": "100000"}
    lowest = minimum
    if variable == "DISCONNECT_AFTER_SECONDS":
        roomy, lowest = {"HEARTBEAT_INTERVAL_SECONDS": "1", "GRACE_PERIOD_SECONDS": "0"}, 2
    config = load_config({**roomy, variable: f" {lowest} "}, str(tmp_path))
    assert config[FLASK_KEY.get(variable, variable)] == lowest
    with pytest.raises(
        ConfigError, match=f"^{variable} must be at least {minimum}, got {minimum - 1}$"
    ):
        load_config({**roomy, variable: str(minimum - 1)}, str(tmp_path))
    with pytest.raises(ConfigError, match=f"^{variable} must be a whole number, got '1.5'$"):
        load_config({variable: "1.5"}, str(tmp_path))


@pytest.mark.parametrize(("variable", "default"), BOOLEANS)
def test_a_boolean_setting_reads_the_usual_words_in_any_case(variable, default):
    def read(value: str) -> bool:
        return getattr(Settings.read({variable: value}), settings_field(variable))

    assert all(read(word) is True for word in ("1", "True", "yes", "ON"))
    assert all(read(word) is False for word in ("0", "false", "No", "off"))
    assert read("") is default
    with pytest.raises(ConfigError, match=f"^{variable} must be true or false, got 'maybe'$"):
        read("maybe")


def test_embedded_sweeper_follows_redis_unless_set(tmp_path):
    redis = {"REDIS_URL": "redis://localhost:6379/0"}
    assert load_config({**redis, "EMBEDDED_SWEEPER": "yes"}, str(tmp_path))["EMBEDDED_SWEEPER"]
    assert not load_config({"EMBEDDED_SWEEPER": "0"}, str(tmp_path))["EMBEDDED_SWEEPER"]
    with pytest.raises(ConfigError, match=r"^EMBEDDED_SWEEPER must be true or false"):
        load_config({"EMBEDDED_SWEEPER": "sometimes"}, str(tmp_path))


def test_choices_are_read_in_any_case(tmp_path):
    config = load_config(
        {"LOG_FORMAT": "JSON", "LOG_LEVEL": "Warning", "PULSEBOARD_ENV": "DEVELOPMENT"},
        str(tmp_path),
    )
    assert (config["LOG_FORMAT"], config["LOG_LEVEL"]) == ("json", "WARNING")
    assert config["PULSEBOARD_ENV"] == "development"


def test_lists_are_comma_separated_trimmed_and_lower_case(tmp_path):
    config = load_config(
        {
            "COMMAND_KINDS": " Reboot, screenshot ,",
            "ALERT_ALLOWED_SCHEMES": "Mailto, JSON",
            "ALERT_PREVIOUS_SECRET_KEYS": "Old-Key-1,,old-key-2 ",
        },
        str(tmp_path),
    )
    assert config["COMMAND_KINDS"] == ("reboot", "screenshot")
    assert config["ALERT_ALLOWED_SCHEMES"] == ("mailto", "json")
    # Secrets keep their case.
    assert config["ALERT_PREVIOUS_SECRET_KEYS"] == ("Old-Key-1", "old-key-2")


def test_lists_default_to_every_command_kind_and_the_stock_schemes(tmp_path):
    config = load_config({"COMMAND_KINDS": ""}, str(tmp_path))
    assert config["COMMAND_KINDS"] == COMMAND_KIND_NAMES
    assert (
        "mailto" in config["ALERT_ALLOWED_SCHEMES"]
        and "webhooks" in config["ALERT_ALLOWED_SCHEMES"]
    )
    assert config["ALERT_PREVIOUS_SECRET_KEYS"] == ()


@pytest.mark.parametrize("value", ["reboot,selfdestruct", '["reboot"]'])
def test_a_list_names_its_bad_item_and_is_never_read_as_json(tmp_path, value):
    with pytest.raises(ConfigError, match=r"^COMMAND_KINDS must be one of 'reconnect', "):
        load_config({"COMMAND_KINDS": value}, str(tmp_path))


def test_strings_are_trimmed_and_the_dashboard_url_loses_its_trailing_slash(tmp_path):
    config = load_config(
        {"SECRET_KEY": " s3cret ", "ALERT_DASHBOARD_URL": "https://pulse.example/"},
        str(tmp_path),
    )
    assert config["SECRET_KEY"] == "s3cret"
    assert config["ALERT_DASHBOARD_URL"] == "https://pulse.example"


def test_it_names_every_bad_variable_at_once_in_words_not_a_pydantic_dump(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config({"FLAP_THRESHOLD": "0", "LOG_FORMAT": "xml"}, str(tmp_path))
    message = str(caught.value)
    assert message == (
        "FLAP_THRESHOLD must be at least 1, got 0; "
        "LOG_FORMAT must be one of 'console' or 'json', got 'xml'"
    )


def test_it_reads_the_given_mapping_not_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTBEAT_INTERVAL_SECONDS", "7")
    monkeypatch.setenv("FLAP_THRESHOLD", "not a number")
    assert load_config({}, str(tmp_path))["HEARTBEAT_INTERVAL_SECONDS"] == 30
    monkeypatch.delenv("FLAP_THRESHOLD")
    assert load_config(os.environ, str(tmp_path))["HEARTBEAT_INTERVAL_SECONDS"] == 7


def test_the_app_refuses_to_start_on_a_bad_value():
    with pytest.raises(ConfigError, match=r"^SWEEP_INTERVAL_SECONDS must be at least 1, got 0$"):
        create_app(env={"SWEEP_INTERVAL_SECONDS": "0"})


def test_production_refuses_a_short_metrics_token(tmp_path):
    env = {"PULSEBOARD_ENV": "production", "SECRET_KEY": LONG, "ENROLLMENT_KEY": LONG + "e"}
    with pytest.raises(ConfigError, match=r"^METRICS_TOKEN must be at least 32 characters$"):
        load_config({**env, "METRICS_TOKEN": "short"}, str(tmp_path))


def test_production_refuses_the_development_defaults_even_when_written_out(tmp_path):
    env = {"PULSEBOARD_ENV": "production", "SECRET_KEY": DEFAULT_SECRET_KEY}
    with pytest.raises(ConfigError, match=r"^SECRET_KEY must be set in production"):
        load_config(env, str(tmp_path))


@pytest.mark.parametrize(
    ("redis_url", "storage"),
    [
        (None, "pulseboard-memory://"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("unix:///run/redis/redis.sock?db=2", "redis+unix:///run/redis/redis.sock?db=2"),
    ],
)
def test_rate_limits_count_where_redis_is_however_its_url_is_spelt(redis_url, storage):
    assert limit_storage_uri(redis_url) == storage
