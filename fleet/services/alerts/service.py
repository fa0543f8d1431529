"""The alerts' entry points for jobs, the CLI and the web: one call each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from fleet.alert_models import Notification, NotificationKind
from fleet.errors import NotFound
from fleet.extensions import db
from fleet.services.alerts import channels, evaluate, messages, outbox

log = structlog.get_logger("pulseboard.alerts")


def run_alerts(now: datetime, worker: str | None = None) -> dict[str, Any]:
    """One round of the delivery worker: what time triggers, then every due notification."""
    ticked = evaluate.tick(now)
    delivered = outbox.deliver_due(now, worker)
    return {**ticked, **delivered.summary()}


def queue_test(name: str, actor: str | None, now: datetime) -> int:
    """Queue a test message to the channel; the delivery worker sends it. Returns its id."""
    channel = channels.get_channel(name)
    [notification_id] = outbox.queue(
        [channel.id], NotificationKind.TEST, messages.channel_test_message(channel.name, now), now
    )
    db.session.commit()
    log.info("channel_test_queued", channel=name, actor=actor, notification_id=notification_id)
    return notification_id


def send_test(name: str, now: datetime) -> str | None:
    """Send a test message now, as a delivery worker would; the error text, or None once sent."""
    notification_id = queue_test(name, "cli", now)
    return outbox.deliver_one(notification_id, outbox.worker_id(), now)


def test_result(notification_id: int) -> Notification:
    """A queued test's row, for the page that waits for its outcome."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.kind != NotificationKind.TEST:
        raise NotFound(f"no test message {notification_id}", {"notification": notification_id})
    return row
