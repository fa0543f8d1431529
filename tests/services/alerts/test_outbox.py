"""Delivery: claimed by compare-and-set, retried with back-off, nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

from sqlalchemy import select

from fleet.alert_models import AlertChannel, Notification
from fleet.extensions import db
from fleet.services.alerts import channels, outbox
from fleet.services.alerts.messages import channel_test_message
from fleet.timeutil import utcnow
from tests.services.alerts.conftest import T0, at

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def queue_messages(channel: str, count: int, now=T0) -> list[int]:
    channel_id = channels.get_channel(channel).id
    ids = []
    for index in range(count):
        payload = {**channel_test_message(channel, now), "title": f"message {index}"}
        ids += outbox.queue([channel_id], "opened", payload, now)
    db.session.commit()
    return ids


def rows() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.execute(select(Notification).order_by(Notification.id)).scalars())


def channel_row(name: str) -> AlertChannel:
    db.session.expire_all()
    return db.session.execute(select(AlertChannel).where(AlertChannel.name == name)).scalar_one()


def test_it_retries_with_back_off_and_marks_the_channel_failing_after_three(app, receiver, hook):
    receiver.answer = 500
    queue_messages("hook", 1)
    waits = []
    clock = T0
    for _ in range(3):
        outbox.deliver_due(clock)
        [row] = rows()
        assert row.state == "retrying" and row.last_error == "webhook answered HTTP 500"
        waits.append((row.next_attempt_at - clock).total_seconds())
        clock = row.next_attempt_at
    assert waits == [30, 60, 120]
    assert channel_row("hook").consecutive_failures == 3
    assert [c.name for c in channels.failing_channels()] == ["hook"]
    receiver.answer = 200
    outbox.deliver_due(clock)
    assert rows()[0].state == "sent" and rows()[0].attempts == 4
    assert channel_row("hook").consecutive_failures == 0
    assert len(receiver.received) == 4  # three refused, one accepted


def test_it_gives_up_after_a_day(app, receiver, hook):
    receiver.answer = 503
    queue_messages("hook", 1)
    outbox.deliver_due(T0)
    outbox.deliver_due(T0 + timedelta(hours=24, seconds=1))
    assert rows()[0].state == "failed"
    outbox.deliver_due(T0 + timedelta(hours=30))
    assert len(receiver.received) == 2


def test_a_mail_server_stopped_for_a_minute_gets_every_message_once(app, smtp):
    channels.add_channel("mail", smtp.url(), "admin", T0)
    queue_messages("mail", 3)
    smtp.stop()
    report = outbox.deliver_due(at(0))
    assert report.retrying == 3
    assert all(row.state == "retrying" and row.last_error for row in rows())
    outbox.deliver_due(at(20))  # not due yet: nothing tried
    assert all(row.attempts == 1 for row in rows())
    smtp.start()  # back a minute later, on the same port
    outbox.deliver_due(at(60))
    mails = smtp.wait_for(3)
    assert sorted(mail.subject for mail in mails) == [f"message {i}" for i in range(3)]
    assert all(row.state == "sent" for row in rows())
    outbox.deliver_due(at(4000))
    assert len(smtp.mails) == 3


def test_two_workers_racing_send_every_notification_exactly_once(app, receiver, hook):
    ids = queue_messages("hook", 40)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with app.app_context():
                while outbox.deliver_due(utcnow(), worker=name, limit=5).summary() != {
                    "sent": 0,
                    "retrying": 0,
                    "failed": 0,
                    "lost_races": 0,
                }:
                    pass
                db.session.remove()
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    delivered = [int(r.headers["X-Pulseboard-Notification"]) for r in receiver.wait_for(40)]
    assert sorted(delivered) == sorted(ids)  # each once: no duplicates, none missing
    assert {row.claimed_by for row in rows()} == {None}
    assert all(row.state == "sent" and row.attempts == 1 for row in rows())


def test_a_worker_killed_mid_delivery_loses_nothing(app, app_env, receiver, hook):
    ids = queue_messages("hook", 3, now=utcnow())
    receiver.hold_seconds = 30  # the first send hangs until the worker is killed
    env = {**os.environ, **app_env, "ALERT_ALLOW_PRIVATE_TARGETS": "true", "LOG_LEVEL": "error"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "alerts", "deliver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert receiver.arrived.wait(30), "the worker never sent anything"
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(10)
    receiver.hold_seconds = 0
    stuck = [row for row in rows() if row.state == "sending"]
    assert len(stuck) == 1  # claimed by the dead worker
    # Another worker takes the dead one's claim over once it is older than the timeout.
    later = utcnow() + timedelta(seconds=app.config["ALERT_CLAIM_TIMEOUT_SECONDS"] + 1)
    outbox.deliver_due(later)
    assert all(row.state == "sent" for row in rows())
    delivered = [int(r.headers["X-Pulseboard-Notification"]) for r in receiver.received]
    # Every notification arrived; only the one in flight at the kill came twice, with the
    # same id each time, so a receiver drops the repeat.
    assert set(delivered) == set(ids)
    assert len(delivered) - len(set(delivered)) <= 1
