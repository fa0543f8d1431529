"""Channels: checked, stored encrypted, shown masked; mail and webhooks reach real servers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fleet.alert_models import AlertChannel, AlertLog
from fleet.errors import AlreadyExists, InvalidInput, NotFound
from fleet.extensions import db
from fleet.services.alerts import channels, service
from tests.alert_servers import signature_is_valid
from tests.services.alerts.conftest import T0


def test_it_delivers_a_test_mail_through_apprise_to_a_real_smtp_server(app, smtp):
    channels.add_channel("ops-mail", smtp.url(), "admin", T0)
    assert service.send_test("ops-mail", T0) is None
    [mail] = smtp.wait_for(1)
    assert mail.recipients == ["ops@example.com"]
    assert "TEST" in mail.subject and "ops-mail" in mail.subject
    assert "/alerts/channels" in mail.text()


def test_it_posts_json_through_apprise_to_a_real_receiver(app, receiver):
    channels.add_channel("json", f"json://127.0.0.1:{receiver.port}/apprise", "admin", T0)
    assert service.send_test("json", T0) is None
    [posted] = receiver.wait_for(1)
    assert posted.path == "/apprise"
    assert "TEST" in posted.json()["title"]


def test_a_webhook_is_signed_with_a_timestamp(app, receiver):
    added = channels.add_channel("hook", receiver.url(), "admin", T0)
    assert added.generated_secret  # made for the admin, shown once
    assert service.send_test("hook", T0) is None
    [posted] = receiver.wait_for(1)
    assert signature_is_valid(added.generated_secret, posted)
    assert not signature_is_valid("another-secret", posted)
    assert posted.json()["event"] == "channel.test"
    assert posted.headers["X-Pulseboard-Notification"] == str(posted.json()["notification_id"])


def test_the_url_is_stored_encrypted_and_shown_masked(app):
    url = "jsons://user:hunter2@hooks.example.com/path"
    channels.add_channel("secret", url, "admin", T0)
    row = db.session.execute(select(AlertChannel)).scalar_one()
    assert "hunter2" not in row.url_encrypted and "hunter2" not in row.masked_url
    [info] = channels.list_channels()
    assert "hunter2" not in info.masked_url and "hooks.example.com" in info.masked_url
    entries = db.session.execute(select(AlertLog.message)).scalars()
    assert all("hunter2" not in entry for entry in entries)


def test_a_webhook_secret_in_the_url_is_kept_out_of_the_mask(app):
    channels.add_channel("hook", "webhooks://hooks.example.com/x?secret=abc123", "admin", T0)
    [info] = channels.list_channels()
    assert "abc123" not in info.masked_url


def test_the_url_cannot_be_read_under_another_secret_key(app):
    from fleet.services.alerts import crypto

    channels.add_channel("c", "json://hooks.example.com/x", "admin", T0)
    stored = db.session.execute(select(AlertChannel.url_encrypted)).scalar_one()
    app.config["SECRET_KEY"] = "rotated"
    with pytest.raises(crypto.UndecryptableSecret):
        crypto.decrypt(stored)
    app.config["ALERT_PREVIOUS_SECRET_KEYS"] = ("test-secret",)
    assert crypto.decrypt(stored) == "json://hooks.example.com/x"
    assert channels.rotate_keys() == 1
    app.config["ALERT_PREVIOUS_SECRET_KEYS"] = ()
    stored = db.session.execute(select(AlertChannel.url_encrypted)).scalar_one()
    assert crypto.decrypt(stored) == "json://hooks.example.com/x"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://example.com/hook",
        "windows://",
        "nonsense",
        "",
        "mailto://user:pw@example.com?pgppub=/etc/shadow",
    ],
)
def test_it_refuses_urls_outside_the_allow_list_or_reading_files(app, url):
    with pytest.raises(InvalidInput):
        channels.add_channel("bad", url, "admin", T0)
    assert channels.list_channels() == []


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:8080/x",
        "webhook://localhost/x",
        "jsons://10.1.2.3/x",
        "mailto://user:pw@192.168.1.5?to=a@example.com",
        "json://[::1]/x",
        "webhooks://169.254.169.254/latest",
    ],
)
def test_it_refuses_private_and_loopback_targets_unless_allowed(app, url):
    app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = False
    with pytest.raises(InvalidInput, match="ALERT_ALLOW_PRIVATE_TARGETS"):
        channels.add_channel("inside", url, "admin", T0)
    app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = True
    channels.add_channel("inside", url, "admin", T0)


def test_a_send_is_refused_when_the_target_became_private(app, receiver):
    channels.add_channel("hook", receiver.url(), "admin", T0)
    app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = False
    error = service.send_test("hook", T0)
    assert error is not None and "private" in error
    assert receiver.received == []


def test_names_are_unique_and_removal_is_logged(app):
    channels.add_channel("one", "json://hooks.example.com/x", "admin", T0)
    with pytest.raises(AlreadyExists):
        channels.add_channel("one", "json://hooks.example.com/y", "admin", T0)
    channels.remove_channel("one", "admin", T0)
    with pytest.raises(NotFound):
        channels.remove_channel("one", "admin", T0)
    kinds = list(db.session.execute(select(AlertLog.kind).order_by(AlertLog.id)).scalars())
    assert kinds == ["channel_added", "channel_removed"]
