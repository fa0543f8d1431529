"""The notification outbox and its delivery.

A notification is queued in the transaction of the change that caused it, so a
rollback sends nothing and a crash loses nothing. A worker claims a row with a
compare-and-set (`UPDATE ... WHERE state IN (queued, retrying)`, row count
checked) and commits the claim before it sends, so two workers never send one
row twice and no lock is held during the network call. A worker that dies
mid-send leaves its claim behind; after ALERT_CLAIM_TIMEOUT_SECONDS another
worker takes the row over. That resend is the only way a message can arrive
twice, and webhooks carry the same `X-Pulseboard-Notification` id each time so
a receiver can drop it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import and_, insert, or_, select, update

from fleet import metrics
from fleet.alert_models import (
    CLAIMABLE_STATES,
    AlertChannel,
    DeliveryState,
    Notification,
    NotificationKind,
)
from fleet.extensions import db
from fleet.services.alerts import senders

log = structlog.get_logger("pulseboard.alerts.delivery")

BATCH = 100
FIRST_RETRY_SECONDS = 30
MAX_RETRY_GAP_SECONDS = 3600


def queue(
    channel_ids: Iterable[int],
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    incident_id: int | None = None,
    delay_seconds: float = 0,
) -> list[int]:
    """Add one notification per channel to the current transaction; returns their ids."""
    return queue_many(channel_ids, kind, [(incident_id, payload)], now, delay_seconds)


def queue_many(
    channel_ids: Iterable[int],
    kind: str,
    payloads: list[tuple[int | None, dict[str, Any]]],
    now: datetime,
    delay_seconds: float = 0,
) -> list[int]:
    """One notification per channel and (incident, payload), in one INSERT; returns their ids."""
    due = now + timedelta(seconds=delay_seconds)
    rows = [
        {
            "incident_id": incident_id,
            "channel_id": channel_id,
            "kind": kind,
            "payload": payload,
            "state": DeliveryState.QUEUED,
            "attempts": 0,
            "next_attempt_at": due,
            "created_at": now,
        }
        for incident_id, payload in payloads
        for channel_id in channel_ids
    ]
    if not rows:
        return []
    result = db.session.execute(insert(Notification).values(rows).returning(Notification.id))
    return list(result.scalars())


def cancel_queued(incident_ids: Iterable[int], kinds: tuple[str, ...]) -> int:
    """Cancel the not-yet-claimed notifications of these incidents (folded, or over already)."""
    ids = list(incident_ids)
    if not ids:
        return 0
    result = db.session.execute(
        update(Notification)
        .where(
            Notification.incident_id.in_(ids),
            Notification.kind.in_(kinds),
            Notification.state == DeliveryState.QUEUED,
        )
        .values(state=DeliveryState.CANCELLED)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def was_announced(incident_id: int) -> bool:
    """True when an opening notification of the incident went (or is going) out."""
    return (
        db.session.execute(
            select(Notification.id)
            .where(
                Notification.incident_id == incident_id,
                Notification.kind == NotificationKind.OPENED,
                Notification.state != DeliveryState.CANCELLED,
            )
            .limit(1)
        ).first()
        is not None
    )


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    lost_races: int = 0
    errors: list[str] = field(default_factory=list)

    def record(self, state: str, error: str | None) -> None:
        """Count one send's outcome here and in the Prometheus counter."""
        setattr(self, state, getattr(self, state) + 1)
        if error is not None:
            self.errors.append(error)
        metrics.record_delivery(state)

    def summary(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "lost_races": self.lost_races,
        }


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _due(now: datetime) -> Any:
    stale = now - timedelta(seconds=current_app.config["ALERT_CLAIM_TIMEOUT_SECONDS"])
    return or_(
        and_(Notification.state.in_(CLAIMABLE_STATES), Notification.next_attempt_at <= now),
        # Claimed by a worker that died before it could say how the send went.
        and_(Notification.state == DeliveryState.SENDING, Notification.claimed_at < stale),
    )


def deliver_due(now: datetime, worker: str | None = None, limit: int = BATCH) -> DeliveryReport:
    """Claim and send the notifications that are due, oldest first.

    1. Pick due ids (queued or retrying and due, or claimed by a worker long gone).
    2. Claim each by compare-and-set and commit, so no other worker sends it.
    3. Send it with no transaction open, then record the outcome on the row and
       on its channel's health.
    """
    worker = worker or worker_id()
    report = DeliveryReport()
    ids = list(
        db.session.execute(
            select(Notification.id)
            .where(_due(now))
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        ).scalars()
    )
    db.session.commit()
    for notification_id in ids:
        deliver_one(notification_id, worker, now, report)
    return report


def deliver_one(
    notification_id: int, worker: str, now: datetime, report: DeliveryReport | None = None
) -> str | None:
    """Claim one notification and send it; the error text, or None once sent (or not won)."""
    report = report if report is not None else DeliveryReport()
    if not claim(notification_id, worker, now):
        report.lost_races += 1
        return None
    row = db.session.get(Notification, notification_id)
    channel = db.session.get(AlertChannel, row.channel_id)
    payload, kind, attempts, created_at = row.payload, row.kind, row.attempts, row.created_at
    db.session.commit()  # nothing held open while the network call runs
    error = senders.send(channel, payload, notification_id) if channel else "channel removed"
    state = _outcome(error, kind, created_at, now)
    _finish(notification_id, row.channel_id, worker, error, state, attempts, now)
    report.record(state, error)
    log.info(
        "notification_delivered" if error is None else "notification_failed",
        notification_id=notification_id,
        kind=kind,
        attempts=attempts,
        error=error,
        state=state,
    )
    return error


def claim(notification_id: int, worker: str, now: datetime) -> bool:
    """Take the row for this worker; False when another worker has it (or it is not due)."""
    result = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, _due(now))
        .values(
            state=DeliveryState.SENDING,
            claimed_by=worker,
            claimed_at=now,
            attempts=Notification.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def retry_delay(attempts: int) -> float:
    """Seconds before the next try: 30 s, doubling, at most an hour apart."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), MAX_RETRY_GAP_SECONDS)


def _outcome(error: str | None, kind: str, created_at: datetime, now: datetime) -> str:
    """sent, retrying, or failed for good."""
    if error is None:
        return DeliveryState.SENT
    # A test is answered at once, on the page or in the terminal: it is never retried.
    if kind == NotificationKind.TEST:
        return DeliveryState.FAILED
    elapsed = (now - created_at).total_seconds()
    gives_up = elapsed >= current_app.config["ALERT_RETRY_FOR_SECONDS"]
    return DeliveryState.FAILED if gives_up else DeliveryState.RETRYING


def _finish(
    notification_id: int,
    channel_id: int,
    worker: str,
    error: str | None,
    state: str,
    attempts: int,
    now: datetime,
) -> None:
    """Record the outcome on the row (if this worker still holds it) and on the channel."""
    if error is None:
        values: dict[str, Any] = {"state": state, "sent_at": now, "last_error": None}
        health: dict[str, Any] = {"consecutive_failures": 0, "last_success_at": now}
    else:
        values = {
            "state": state,
            "last_error": error,
            "next_attempt_at": now + timedelta(seconds=retry_delay(attempts)),
        }
        health = {
            "consecutive_failures": AlertChannel.consecutive_failures + 1,
            "last_error": error,
            "last_failure_at": now,
        }
    finished = db.session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.claimed_by == worker,
            Notification.state == DeliveryState.SENDING,
        )
        .values(claimed_by=None, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(AlertChannel)
        .where(AlertChannel.id == channel_id)
        .values(**health)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if finished.rowcount != 1:
        log.warning("notification_taken_over", notification_id=notification_id, worker=worker)


def delivery_states(incident_ids: list[int]) -> dict[int, list[Notification]]:
    """Each incident's notifications, oldest first (for the Alerts page and the API)."""
    if not incident_ids:
        return {}
    rows = db.session.execute(
        select(Notification)
        .where(Notification.incident_id.in_(incident_ids))
        .order_by(Notification.id)
    ).scalars()
    found: dict[int, list[Notification]] = {}
    for row in rows:
        found.setdefault(row.incident_id, []).append(row)
    return found
