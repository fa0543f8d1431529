"""Metrics of remote commands: events counted by kind, event and result once committed, and
the commands waiting (for a heartbeat, for an ack) read from the database at scrape time."""

from __future__ import annotations

from datetime import timedelta

from fleet.services import commands
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import beat
from tests.ops.test_metrics import scrape, value

COUNTED = "pulseboard_commands_total"


def grew(before, after, **labels) -> float:
    return value(after, COUNTED, **labels) - value(before, COUNTED, **labels)


def test_it_counts_requests_deliveries_and_acks_by_kind_and_result(unlimited_client, make_device):
    kiosk = make_device("kiosk-1")
    before = scrape(unlimited_client)
    commands.request_command("kiosk-1", "reboot", {}, "ops", utcnow())
    commands.request_command("kiosk-1", "screenshot", {}, "ops", utcnow())
    delivered = beat(unlimited_client, kiosk.token).json["commands"]
    acks = [
        {"id": delivered[0]["id"], "result": "ok"},
        {"id": delivered[1]["id"], "result": "failed", "message": "no display"},
    ]
    assert beat(unlimited_client, kiosk.token, acks=acks).status_code == 200
    after = scrape(unlimited_client)
    for kind in ("reboot", "screenshot"):
        assert grew(before, after, kind=kind, event="requested", result="none") == 1
        assert grew(before, after, kind=kind, event="delivered", result="none") == 1
    assert grew(before, after, kind="reboot", event="acknowledged", result="ok") == 1
    assert grew(before, after, kind="screenshot", event="acknowledged", result="failed") == 1


def test_it_counts_expired_and_unacknowledged_commands(unlimited_client, make_device):
    kiosk = make_device("kiosk-1")
    now = utcnow()
    commands.request_command("kiosk-1", "reboot", {}, "ops", now)
    beat(unlimited_client, kiosk.token)  # delivered, never acknowledged
    commands.request_command("kiosk-1", "restart_app", {}, "ops", now)  # never collected
    before = scrape(unlimited_client)
    enforce_timeouts(now + timedelta(hours=1))
    after = scrape(unlimited_client)
    assert grew(before, after, kind="reboot", event="unacknowledged", result="none") == 1
    assert grew(before, after, kind="restart_app", event="expired", result="none") == 1


def test_a_refused_ack_counts_nothing(unlimited_client, make_device):
    kiosk = make_device("kiosk-1")
    before = scrape(unlimited_client)
    refused = beat(unlimited_client, kiosk.token, acks=[{"id": 999, "result": "ok"}])
    assert refused.status_code == 422
    after = scrape(unlimited_client)
    changed = [key for key in after if key[0] == COUNTED and after[key] != before.get(key, 0)]
    assert changed == []


def test_it_reports_the_commands_waiting_from_the_database(unlimited_client, make_device):
    kiosk = make_device("kiosk-1")
    make_device("kiosk-2")
    commands.request_command("kiosk-1", "reboot", {}, "ops", utcnow())
    commands.request_command("kiosk-2", "reboot", {}, "ops", utcnow())
    commands.request_command("kiosk-2", "screenshot", {}, "ops", utcnow())
    samples = scrape(unlimited_client)
    assert value(samples, "pulseboard_commands_pending", kind="reboot") == 2
    assert value(samples, "pulseboard_commands_pending", kind="screenshot") == 1
    assert ("pulseboard_commands_pending", (("kind", "refresh_content"),)) in samples
    beat(unlimited_client, kiosk.token)
    samples = scrape(unlimited_client)
    assert value(samples, "pulseboard_commands_pending", kind="reboot") == 1
    assert value(samples, "pulseboard_commands_awaiting_ack", kind="reboot") == 1
