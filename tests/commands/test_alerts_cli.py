"""`flask channels ...` and `flask alerts ...`, as scripts use them; `flask doctor` on channels."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from fleet.alert_models import AlertChannel
from fleet.extensions import db
from tests.alert_servers import SmtpInbox, WebhookReceiver


@pytest.fixture(autouse=True)
def _loopback(app):
    app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = True


@pytest.fixture
def smtp():
    inbox = SmtpInbox().start()
    yield inbox
    inbox.stop()


def invoke(runner, *args):
    return runner.invoke(args=list(args))


def test_channels_add_prints_the_name_last_and_list_masks_the_url(runner):
    result = invoke(runner, "channels", "add", "ops", "jsons://bot:hunter2@hooks.example.com/x")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "ops"
    assert "hunter2" not in result.output
    listed = invoke(runner, "channels", "list")
    assert "ops" in listed.output and "hunter2" not in listed.output


def test_a_webhook_channel_shows_its_generated_secret_once(runner):
    result = invoke(runner, "channels", "add", "hook", "webhooks://hooks.example.com/in")
    lines = result.output.strip().splitlines()
    assert lines[-1] == "hook" and "signing secret" in lines[-2]


def test_channels_test_exits_0_once_delivered(runner, smtp):
    invoke(runner, "channels", "add", "mail", smtp.url())
    result = invoke(runner, "channels", "test", "mail")
    assert result.exit_code == 0, result.output
    assert len(smtp.wait_for(1)) == 1


def test_channels_test_fails_with_the_error(runner):
    receiver = WebhookReceiver(answer=500).start()
    try:
        invoke(runner, "channels", "add", "hook", receiver.url())
        result = invoke(runner, "channels", "test", "hook")
    finally:
        receiver.stop()
    assert result.exit_code == 1
    assert "HTTP 500" in result.output


def test_a_refused_url_adds_nothing(runner):
    result = invoke(runner, "channels", "add", "bad", "file:///etc/passwd")
    assert result.exit_code == 1 and "not allowed" in result.output
    assert "No channels." in invoke(runner, "channels", "list").output


def test_channels_remove(runner):
    invoke(runner, "channels", "add", "ops", "json://hooks.example.com/x")
    assert invoke(runner, "channels", "remove", "ops").exit_code == 0
    assert invoke(runner, "channels", "remove", "ops").exit_code == 1


def test_alerts_add_rule_list_and_remove(runner):
    invoke(runner, "channels", "add", "ops", "json://hooks.example.com/x")
    invoke(runner, "channels", "add", "pager", "json://hooks.example.com/y")
    result = invoke(
        runner,
        "alerts",
        "add-rule",
        "stores",
        "--when",
        "site-outage",
        "--percent",
        "60",
        "--devices",
        "5",
        "--channel",
        "ops",
        "--channel",
        "pager",
        "--remind-hours",
        "4",
    )
    assert result.exit_code == 0, result.output
    listed = invoke(runner, "alerts", "list").output
    assert "stores" in listed and "60 %" in listed and "5 devices" in listed
    assert "ops, pager" in listed and "every 4 h" in listed
    assert invoke(runner, "alerts", "remove", "stores").exit_code == 0
    assert "No alert rules." in invoke(runner, "alerts", "list").output


def test_a_rule_needs_known_channels(runner):
    result = invoke(runner, "alerts", "add-rule", "r", "--when", "disconnected", "--channel", "x")
    assert result.exit_code == 1 and "no channel named 'x'" in result.output


def test_a_not_connected_rule_takes_for_and_a_site(runner):
    invoke(runner, "channels", "add", "ops", "json://hooks.example.com/x")
    result = invoke(
        runner,
        "alerts",
        "add-rule",
        "lobby",
        "--when",
        "not-connected",
        "--for",
        "120",
        "--site",
        "Berlin HQ",
        "--channel",
        "ops",
    )
    assert result.exit_code == 0, result.output
    assert "for 120 s in site Berlin HQ" in invoke(runner, "alerts", "list").output


def test_doctor_names_a_failing_channel(runner):
    invoke(runner, "channels", "add", "ops", "json://hooks.example.com/x")
    db.session.execute(
        update(AlertChannel).values(consecutive_failures=3, last_error="webhook answered HTTP 500")
    )
    db.session.commit()
    result = invoke(runner, "doctor")
    assert (
        "[FAIL] alert_channels" in result.output
        and "ops (webhook answered HTTP 500)" in result.output
    )
