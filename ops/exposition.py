"""The Prometheus exposition /metrics serves: this host's counters, then the fleet gauges.

The counters are kept by fleet.metrics in the process that does the work. The
fleet gauges (devices by status, the last sweep, the commands waiting, the
alert channels' health and the notifications pending) are not
per-process facts: they are read from the database at scrape time (the
fleet's with two GROUP BYs, the commands' over an index range, and one indexed
lookup; the alerts' with the channel list and one count). Living
here, beside the view, the exposition may import the services it reads
without the services' own counters importing them back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from fleet.config import COMMAND_KIND_NAMES
from fleet.extensions import db
from fleet.models import SweepRun
from fleet.rules import Status
from fleet.services.alerts.channels import list_channels
from fleet.services.alerts.incidents import pending_notifications
from fleet.services.commands import CommandState, open_commands
from fleet.services.queries import devices_by_status
from fleet.services.sweep import last_sweep

log = structlog.get_logger("pulseboard.metrics")


class FleetCollector(Collector):
    """Gauges computed from the database when scraped."""

    def __init__(
        self,
        counts: dict[str, int],
        last_sweep: SweepRun | None,
        commands: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.counts = counts
        self.last_sweep = last_sweep
        self.commands = commands or {}

    def collect(self) -> Iterator[Metric]:
        devices = GaugeMetricFamily(
            "pulseboard_devices", "Devices by current status.", labels=["status"]
        )
        for status in Status:
            devices.add_metric([status.value], self.counts.get(status.value, 0))
        yield devices
        yield from self._commands()
        if self.last_sweep is None:
            return
        run = self.last_sweep
        yield GaugeMetricFamily(
            "pulseboard_sweep_last_run_timestamp_seconds",
            "When the newest completed sweep started (Unix time), whichever process ran it.",
            value=run.started_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "pulseboard_sweep_last_duration_seconds",
            "Duration of the newest completed sweep.",
            value=run.duration_ms / 1000,
        )
        yield GaugeMetricFamily(
            "pulseboard_sweep_last_transitions",
            "Status transitions made by the newest completed sweep.",
            value=run.transitions,
        )

    def _commands(self) -> Iterator[Metric]:
        waiting = (
            (CommandState.PENDING, "pulseboard_commands_pending", "waiting for a heartbeat"),
            (CommandState.DELIVERED, "pulseboard_commands_awaiting_ack", "delivered, no ack yet"),
        )
        for state, name, what in waiting:
            gauge = GaugeMetricFamily(name, f"Commands {what}, by kind.", labels=["kind"])
            for kind in COMMAND_KIND_NAMES:
                gauge.add_metric([kind], self.commands.get((state, kind), 0))
            yield gauge


def multiprocess_mode() -> bool:
    """True when counters are shared through files, as under gunicorn."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def render_latest() -> bytes:
    """The text exposition of every metric: this host's processes, then the fleet gauges."""
    if multiprocess_mode():
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    return (
        generate_latest(processes)
        + _read_from_database(_fleet_collector, "fleet_metrics_unavailable")
        + _read_from_database(_alerts_collector, "alert_metrics_unavailable")
    )


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


def _fleet_collector() -> Collector:
    return FleetCollector(devices_by_status(), last_sweep(), open_commands())


def _alerts_collector() -> Collector:
    return ChannelCollector(list_channels(), pending_notifications())


def _read_from_database(read: Callable[[], Collector], unavailable_event: str) -> bytes:
    """The gauges `read` collects, in the text format; empty while the database is down.

    A database outage must not cost the scrape the counters that explain it.
    """
    try:
        collector = read()
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning(unavailable_event, error=type(error).__name__)
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
