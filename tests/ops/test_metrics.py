from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from fleet.extensions import db
from fleet.services import locks
from fleet.services.sweep import SWEEP_LOCK, run_sweep
from fleet.timeutil import utcnow
from tests.helpers import beat


def scrape(client, **headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_it_counts_heartbeats_by_result(client, enrol):
    before = scrape(client)
    token = enrol("kiosk-1")["token"]
    assert beat(client, token).status_code == 200
    assert beat(client, token).status_code == 429
    assert beat(client, "pbd_not-a-token").status_code == 401
    after = scrape(client)
    counted = "pulseboard_heartbeats_total"
    for result in ("accepted", "rate_limited", "unauthorized"):
        assert value(after, counted, result=result) - value(before, counted, result=result) == 1


def test_it_counts_an_invalid_heartbeat(unlimited_client, enrol):
    token = enrol("kiosk-1")["token"]
    before = scrape(unlimited_client)
    assert beat(unlimited_client, token, battery_level=900).status_code == 422
    after = scrape(unlimited_client)
    name = "pulseboard_heartbeats_total"
    assert value(after, name, result="invalid") - value(before, name, result="invalid") == 1


def test_it_counts_transitions_by_from_to_and_source(client, make_device):
    device = make_device("kiosk-1", status="disconnected")
    before = scrape(client)
    assert beat(client, device.token).status_code == 200
    after = scrape(client)
    labels = {"from_status": "disconnected", "to_status": "connected", "source": "device"}
    name = "pulseboard_status_transitions_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_it_reports_devices_by_status_from_the_database(client, make_device):
    make_device("kiosk-1")
    make_device("kiosk-2")
    make_device("kiosk-3", status="disconnected")
    samples = scrape(client)
    assert value(samples, "pulseboard_devices", status="connected") == 2
    assert value(samples, "pulseboard_devices", status="disconnected") == 1
    assert ("pulseboard_devices", (("status", "temporarily_offline"),)) in samples


def test_it_reports_the_last_sweep_and_observes_its_duration(client, make_device):
    for uid in ("kiosk-1", "kiosk-2"):
        make_device(uid, now=utcnow() - timedelta(minutes=2))
    before = scrape(client)
    report = run_sweep(utcnow(), runner="test")
    after = scrape(client)
    assert report.transitions == 2
    assert value(after, "pulseboard_sweep_last_transitions") == 2
    assert value(after, "pulseboard_sweep_last_duration_seconds") == pytest.approx(
        report.duration_ms / 1000
    )
    assert value(after, "pulseboard_sweep_last_run_timestamp_seconds") == pytest.approx(
        report.started_at.timestamp()
    )
    for name, grew_by in (
        ("pulseboard_sweep_duration_seconds_count", 1),
        ("pulseboard_sweep_duration_seconds_sum", report.duration_ms / 1000),
        ("pulseboard_sweep_transitions_total", 2),
    ):
        assert value(after, name) - value(before, name) == pytest.approx(grew_by)


def test_a_skipped_sweep_is_not_observed(client):
    before = scrape(client)
    with locks.held(SWEEP_LOCK, 60, utcnow()):
        assert run_sweep(utcnow(), runner="test").skipped
    after = scrape(client)
    name = "pulseboard_sweep_duration_seconds_count"
    assert value(after, name) == value(before, name)


def test_it_measures_request_latency_by_endpoint(client):
    before = scrape(client)
    client.get("/healthz")
    after = scrape(client)
    name = "pulseboard_http_request_duration_seconds_count"
    labels = {"endpoint": "ops.healthz", "method": "GET"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_it_requires_the_metrics_token_when_one_is_set(make_app):
    client = make_app(METRICS_TOKEN="scrape-secret").test_client()
    assert client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", headers=wrong).status_code == 401
    samples = scrape(client, Authorization="Bearer scrape-secret")
    assert ("pulseboard_devices", (("status", "connected"),)) in samples


def test_it_still_serves_the_counters_when_the_database_is_down(make_app):
    client = make_app(SQLALCHEMY_DATABASE_URI="sqlite:////nonexistent/dir/db.sqlite3").test_client()
    client.get("/healthz")
    samples = scrape(client)
    assert (
        value(
            samples,
            "pulseboard_http_requests_total",
            endpoint="ops.healthz",
            method="GET",
            status="200",
        )
        >= 1
    )
    assert not any(name == "pulseboard_devices" for name, _ in samples)


def test_it_reports_each_alert_channel_and_whether_it_is_failing(client, app):
    from sqlalchemy import update

    from fleet.alert_models import AlertChannel
    from fleet.services.alerts import channels

    channels.add_channel("ops", "json://hooks.example.com/x", "admin", utcnow())
    channels.add_channel("pager", "json://hooks.example.com/y", "admin", utcnow())
    db.session.execute(
        update(AlertChannel).where(AlertChannel.name == "ops").values(consecutive_failures=4)
    )
    db.session.commit()
    samples = scrape(client)
    assert value(samples, "pulseboard_alert_channel_failing", channel="ops") == 1
    assert value(samples, "pulseboard_alert_channel_failing", channel="pager") == 0
    assert value(samples, "pulseboard_alert_channel_consecutive_failures", channel="ops") == 4


def test_a_scrape_keeps_the_counters_when_the_fleet_gauges_cannot_be_read(client):
    client.get("/healthz")
    db.session.execute(text("ALTER TABLE device RENAME TO device_away"))
    db.session.commit()
    try:
        samples = scrape(client)
    finally:
        db.session.rollback()
        db.session.execute(text("ALTER TABLE device_away RENAME TO device"))
        db.session.commit()
    assert value(samples, "pulseboard_http_requests_total", endpoint="ops.healthz",
                 method="GET", status="200") >= 1  # fmt: skip
    assert not any(name == "pulseboard_devices" for name, _ in samples)
    assert ("pulseboard_notifications_pending", ()) in samples
