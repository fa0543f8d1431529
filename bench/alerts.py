"""Benchmark: alerts when 10,000 devices across 100 sites go silent at once, and the alert lag.

    .venv/bin/python -m bench.alerts [--devices 10000] [--sites 100] [--lag-trials 5]

Starts a throwaway PostgreSQL (or uses DATABASE_URL) and a local webhook
receiver, adds a webhook channel, a `disconnected` rule and a `site-outage`
rule, then:

1. Bulk: every device's last heartbeat is put just past D, and one sweep moves
   them all to disconnected. Timed twice, with no rules (the baseline, same run)
   and with the rules; the outbox should then hold one message per site, not
   one per device.
2. Lag: the embedded sweeper and delivery loops run at their default intervals
   while a fresh site goes silent; the lag is from the moment the status rules
   made the condition true (last heartbeat + I + G for the site outage,
   + D for a lone device's disconnection) to the receiver holding the message.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta

from sqlalchemy import func, select, text, update

from bench.seeding import migrated_app, postgres_database, seed
from fleet import rules
from fleet.alert_models import Incident, IncidentDevice, Notification
from fleet.extensions import db
from fleet.models import Device
from fleet.services.alerts import channels, ruleset
from fleet.services.alerts.ruleset import RuleSpec
from fleet.services.device_state import fleet_defaults
from fleet.services.enrolment import register_device
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from jobs.embedded import delivery, sweeper
from tests.alert_servers import WebhookReceiver


def spread_over_sites(sites: int) -> None:
    db.session.execute(
        text("UPDATE device SET site = 'Site ' || lpad(((id - 1) % :sites)::text, 3, '0')"),
        {"sites": sites},
    )
    db.session.commit()


def silence_all(age_seconds: float) -> None:
    """Every device beat last `age_seconds` ago, with its deadlines to match."""
    beat = utcnow() - timedelta(seconds=age_seconds)
    deadlines = rules.deadlines_for(beat, fleet_defaults())
    db.session.execute(
        update(Device).values(
            status="connected",
            last_heartbeat_at=beat,
            offline_due_at=deadlines.offline_at,
            disconnect_due_at=deadlines.disconnect_at,
        )
    )
    db.session.commit()


def reset_alerts() -> None:
    for table in ("notification", "incident_device", "incident", "alert_log", "device_event"):
        db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


def bulk(devices: int, sites: int) -> None:
    defaults = fleet_defaults()
    silence_all(defaults.disconnect_after + 1)
    started = time.perf_counter()
    report = enforce_timeouts(utcnow())
    baseline_ms = (time.perf_counter() - started) * 1000
    print(f"sweep of {report.transitions:,} devices, no rules (baseline): {baseline_ms:8.0f} ms")
    reset_alerts()
    receiver = WebhookReceiver().start()
    channels.add_channel("bench", receiver.url(), "bench", utcnow())
    spec = RuleSpec
    ruleset.add_rule(spec(name="down", kind="disconnected", channels=("bench",)), "bench", utcnow())
    ruleset.add_rule(
        spec(name="stores", kind="site_outage", channels=("bench",)), "bench", utcnow()
    )
    silence_all(defaults.disconnect_after + 1)
    started = time.perf_counter()
    report = enforce_timeouts(utcnow())
    with_rules_ms = (time.perf_counter() - started) * 1000
    count = lambda query: db.session.execute(query).scalar_one()  # noqa: E731
    site_messages = count(
        select(func.count())
        .select_from(Notification)
        .join(Incident)
        .where(Incident.kind == "site_outage")
    )
    device_messages = count(
        select(func.count())
        .select_from(Notification)
        .join(Incident)
        .where(Incident.kind != "site_outage", Notification.state != "cancelled")
    )
    members = count(select(func.count()).select_from(IncidentDevice))
    print(
        f"sweep of {report.transitions:,} devices with the rules:       {with_rules_ms:8.0f} ms"
        f"  (target < 3,000 ms; rules cost {with_rules_ms - baseline_ms:+.0f} ms)"
    )
    print(
        f"outbox: {site_messages} site-outage messages, {device_messages} device messages"
        f" (for {sites} sites, {devices:,} devices; {members:,} devices named in incidents)"
    )
    receiver.stop()


def lag(app, trials: int) -> None:
    """Live loops at their default intervals; a fresh site of 4 and a lone device go silent."""
    receiver = WebhookReceiver().start()
    channels.add_channel("lag", receiver.url(), "bench", utcnow())
    for name in ("down", "stores"):
        ruleset.remove_rule(name, "bench", utcnow())
    ruleset.add_rule(
        RuleSpec(name="lone", kind="disconnected", channels=("lag",)), "bench", utcnow()
    )
    ruleset.add_rule(
        RuleSpec(name="shop", kind="site_outage", channels=("lag",)), "bench", utcnow()
    )
    db.session.execute(update(Device).values(offline_due_at=None, disconnect_due_at=None))
    db.session.commit()
    defaults = fleet_defaults()
    loops = [sweeper(app), delivery(app)]
    print(
        f"live loops: sweep every {loops[0].interval} s, delivery every {loops[1].interval} s,"
        f" group wait {app.config['ALERT_GROUP_WAIT_SECONDS']} s"
    )
    for loop in loops:
        loop.start()
    site_lags, device_lags = [], []
    try:
        for trial in range(trials):
            site_lags.append(_trial(receiver, f"shop-{trial}", 4, defaults.offline_after))
            device_lags.append(_trial(receiver, f"lone-{trial}", 1, defaults.disconnect_after))
    finally:
        for loop in loops:
            loop.stop()
        receiver.stop()
    for what, lags in (("site outage", site_lags), ("lone device disconnected", device_lags)):
        print(
            f"alert lag, {what}: median {statistics.median(lags):.1f} s, max {max(lags):.1f} s"
            f" over {len(lags)} trials (goal < 15 s)"
        )


def _trial(receiver, name: str, count: int, threshold: float) -> float:
    """One silence: devices whose condition comes true a moment from now; seconds until received."""
    beat = utcnow() - timedelta(seconds=threshold - 1.0)
    site = name if count > 1 else None
    for index in range(count):
        register_device(f"{name}-{index}", beat, site=site)
    true_at = (beat + timedelta(seconds=threshold)).timestamp()
    seen = len(receiver.received)
    deadline = time.time() + 60
    while time.time() < deadline:
        for received in receiver.received[seen:]:
            body = received.json()
            if body["event"] == "incident.opened" and f"{name}-0" in body["message"]:
                return received.at - true_at
        time.sleep(0.05)
    raise RuntimeError(f"no message for {name} within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--lag-trials", type=int, default=5)
    args = parser.parse_args()
    with postgres_database(os.environ.get("DATABASE_URL"), "pulseboard_bench_alerts") as url:
        app = migrated_app(url)
        app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = True
        with app.app_context():
            seed(args.devices)
            spread_over_sites(args.sites)
            bulk(args.devices, args.sites)
            if args.lag_trials:
                lag(app, args.lag_trials)


if __name__ == "__main__":
    main()
