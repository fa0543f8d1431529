"""Prometheus metrics of the alerts: deliveries by this process, channels read from the database."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from fleet.extensions import db

log = structlog.get_logger("pulseboard.metrics")

DELIVERIES = Counter(
    "pulseboard_notification_deliveries_total",
    "Notification delivery attempts by this process, by result: sent, retrying, failed.",
    ["result"],
)


def record_delivery(result: str) -> None:
    DELIVERIES.labels(result).inc()


class ChannelCollector(Collector):
    """Per-channel health, read from the database when scraped."""

    def __init__(self, channels: list, queued: int) -> None:
        self.channels = channels
        self.queued = queued

    def collect(self) -> Iterator[Metric]:
        failing = GaugeMetricFamily(
            "pulseboard_alert_channel_failing",
            "1 when the channel's last 3 or more deliveries all failed, else 0.",
            labels=["channel"],
        )
        failures = GaugeMetricFamily(
            "pulseboard_alert_channel_consecutive_failures",
            "Deliveries to the channel that failed since its last success.",
            labels=["channel"],
        )
        for channel in self.channels:
            failing.add_metric([channel.name], 1 if channel.failing else 0)
            failures.add_metric([channel.name], channel.consecutive_failures)
        yield failing
        yield failures
        yield GaugeMetricFamily(
            "pulseboard_notifications_pending",
            "Notifications queued or waiting for a retry.",
            value=self.queued,
        )


def exposition() -> bytes:
    """The alerts' database-backed gauges, in the text format; empty while the database is down."""
    from fleet.services.alerts.channels import list_channels
    from fleet.services.alerts.incidents import pending_notifications

    try:
        collector = ChannelCollector(list_channels(), pending_notifications())
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("alert_metrics_unavailable", error=type(error).__name__)
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
