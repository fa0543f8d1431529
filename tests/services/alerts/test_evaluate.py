"""Rules evaluated from status changes: incidents open, fold, resolve, and say so once."""

from __future__ import annotations

from sqlalchemy import func, select

from fleet.alert_models import AlertLog, Incident, Notification
from fleet.extensions import db
from fleet.services.alerts import evaluate, outbox
from fleet.services.sweep import enforce_timeouts
from tests.services.alerts.conftest import at, heartbeat


def notifications() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.execute(select(Notification).order_by(Notification.id)).scalars())


def record_disconnection(device, seconds: float) -> None:
    """A connected -> disconnected event at T0 + seconds, as the sweep would write it."""
    from fleet.services.events import record_events, status_event

    event = status_event(
        device.id, device.uid, "connected", "disconnected",
        reason="test", source="system", now=at(seconds), age=seconds,
    )  # fmt: skip
    record_events([event])


def incidents() -> list[Incident]:
    db.session.expire_all()
    return list(db.session.execute(select(Incident).order_by(Incident.id)).scalars())


def test_it_tells_the_channel_once_when_a_device_disconnects(fleet, hook, add_rule, receiver):
    fleet("lobby", 1)
    add_rule()
    enforce_timeouts(at(301))
    [incident] = incidents()
    assert (incident.state, incident.kind, incident.site) == ("open", "disconnected", "lobby")
    outbox.deliver_due(at(310))
    [message] = receiver.wait_for(1)
    body = message.json()
    assert body["event"] == "incident.opened"
    assert "OPENED" in body["title"] and "lobby-00" in body["title"]
    assert body["incident"]["device_uids"] == ["lobby-00"]
    assert body["url"].endswith(f"/alerts#incident-{incident.id}")
    outbox.deliver_due(at(400))
    assert len(receiver.received) == 1


def test_it_sends_a_recovery_when_the_device_comes_back(fleet, hook, add_rule, receiver):
    [device] = fleet("lobby", 1)
    add_rule()
    enforce_timeouts(at(301))
    outbox.deliver_due(at(310))
    heartbeat(device, at(400))
    assert incidents()[0].state == "resolved"
    outbox.deliver_due(at(401))
    events = [received.json()["event"] for received in receiver.wait_for(2)]
    assert events == ["incident.opened", "incident.resolved"]
    assert "RESOLVED" in receiver.received[1].json()["title"]


def test_a_device_back_within_the_group_wait_sends_nothing(fleet, hook, add_rule, receiver):
    [device] = fleet("lobby", 1)
    add_rule()
    enforce_timeouts(at(301))
    heartbeat(device, at(303))
    outbox.deliver_due(at(400))
    assert receiver.received == []
    assert [n.state for n in notifications()] == ["cancelled"]


def test_a_device_never_seen_online_raises_nothing(app, hook, add_rule, receiver):
    from fleet.services.enrolment import add_device

    add_device("boxed", at(0), site="store")
    add_rule()
    add_rule("store", kind="site_outage")
    enforce_timeouts(at(10_000))
    assert incidents() == [] and notifications() == []


def test_a_rollback_of_the_change_leaves_no_incident_and_no_message(fleet, hook, add_rule):
    [device] = fleet("lobby", 1)
    add_rule()
    record_disconnection(device, 301)
    db.session.rollback()
    assert incidents() == [] and notifications() == []


def test_a_site_outage_is_one_message_naming_the_site_count_and_devices(
    fleet, hook, add_rule, receiver
):
    fleet("berlin", 6)
    fleet("paris", 2)
    add_rule()
    add_rule("stores", kind="site_outage")
    enforce_timeouts(at(301))
    outbox.deliver_due(at(400))
    # Two sites went dark: one message each, and their eight devices said nothing apart.
    received = sorted(receiver.wait_for(2), key=lambda r: r.json()["title"])
    assert len(received) == 2
    berlin = received[0].json()
    assert "site outage at berlin: 6 of 6 devices not connected" in berlin["title"]
    assert "berlin-00" in berlin["message"] and "and 1 more" in berlin["message"]
    assert "paris" in received[1].json()["title"]
    outbox.deliver_due(at(500))
    assert len(receiver.received) == 2


def test_device_incidents_opened_before_the_outage_fold_into_it(fleet, hook, add_rule, receiver):
    devices = fleet("berlin", 4)
    add_rule()
    add_rule("stores", kind="site_outage", percent=75)
    # One device dies first and gets its own incident, still within the group wait...
    from sqlalchemy import update

    from fleet.models import Device

    db.session.execute(
        update(Device).where(Device.id == devices[0].id).values(status="disconnected")
    )
    record_disconnection(devices[0], 200)
    db.session.commit()
    # ...then the rest of the site goes: the site incident takes its device in.
    enforce_timeouts(at(301))
    outbox.deliver_due(at(400))
    [message] = receiver.wait_for(1)
    assert "4 of 4" in message.json()["title"]
    device_incident = next(i for i in incidents() if i.kind == "disconnected")
    assert device_incident.parent_id is not None


def test_the_site_recovery_names_the_devices_still_silent(fleet, hook, add_rule, receiver):
    devices = fleet("berlin", 4)
    add_rule("stores", kind="site_outage")
    add_rule()
    enforce_timeouts(at(301))
    outbox.deliver_due(at(302))
    for device in devices[:3]:
        heartbeat(device, at(400))
    outbox.deliver_due(at(401))
    received = receiver.wait_for(3)
    resolved = next(r.json() for r in received if r.json()["event"] == "incident.resolved")
    assert "Still not connected: berlin-03" in resolved["message"]
    # The one still silent goes on as an incident of its own, and says so.
    opened = [r.json() for r in received if r.json()["event"] == "incident.opened"]
    assert any(o["incident"]["device_uids"] == ["berlin-03"] for o in opened)


def test_a_rule_with_for_opens_only_once_the_condition_lasted(fleet, hook, add_rule, receiver):
    [device, _] = fleet("lobby", 2)
    add_rule("slow", kind="not_connected", for_seconds=120)
    enforce_timeouts(at(61))
    assert [i.state for i in incidents()] == ["pending", "pending"]
    heartbeat(device, at(100))  # back before 120 s: nothing for this one
    evaluate.tick(at(200))
    assert sorted(i.state for i in incidents()) == ["open", "resolved"]
    outbox.deliver_due(at(200))
    assert len(receiver.wait_for(1)) == 1


def test_reminders_come_every_r_hours_until_acknowledged(fleet, hook, add_rule, receiver):
    from fleet.services.alerts.incidents import acknowledge

    fleet("lobby", 1)
    add_rule(remind_hours=1)
    enforce_timeouts(at(301))
    evaluate.tick(at(301 + 3600))
    outbox.deliver_due(at(301 + 3600))
    assert [r.json()["event"] for r in receiver.wait_for(2)] == [
        "incident.opened",
        "incident.reminder",
    ]
    acknowledge(incidents()[0].id, "op@example.com", "on it", at(4000))
    evaluate.tick(at(301 + 4 * 3600))
    outbox.deliver_due(at(301 + 4 * 3600))
    assert len(receiver.received) == 2
    log = db.session.execute(select(AlertLog).where(AlertLog.kind == "incident_acknowledged"))
    entry = log.scalar_one()
    assert entry.actor == "op@example.com" and "on it" in entry.message


def test_a_late_sweep_sends_one_monitoring_gap_notice_instead_of_a_storm(
    fleet, hook, add_rule, receiver
):
    fleet("a", 1, prefix="a")
    fleet("b", 1, prefix="b")
    fleet("c", 1, prefix="c")
    add_rule()
    # The worker was down: the sweep runs an hour after these devices went silent.
    enforce_timeouts(at(3600))
    outbox.deliver_due(at(3700))
    [message] = receiver.wait_for(1)
    assert message.json()["event"] == "monitoring.gap"
    assert "3 device(s)" in message.json()["message"]
    assert len(incidents()) == 3 and all(i.quiet for i in incidents())
    gap = db.session.execute(
        select(func.count()).select_from(AlertLog).where(AlertLog.kind == "monitoring_gap")
    ).scalar_one()
    assert gap == 1


def test_a_flapping_device_opens_a_flapping_incident(fleet, hook, add_rule, app):
    [device] = fleet("lobby", 1)
    add_rule("flaps", kind="flapping")
    clock = 0
    for _ in range(2):
        clock += 61
        enforce_timeouts(at(clock))  # connected -> temporarily offline
        heartbeat(device, at(clock + 1))  # and back
        clock += 1
    [incident] = incidents()
    assert incident.kind == "flapping" and incident.state == "open"
    evaluate.tick(at(clock + app.config["FLAP_WINDOW_SECONDS"] + 10))
    assert incidents()[0].state == "resolved"
