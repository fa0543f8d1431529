"""Fixtures for the alerts: real SMTP and HTTP receivers, channels, rules, devices at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from fleet.services.alerts import channels, ruleset
from fleet.services.alerts.ruleset import RuleSpec
from tests.alert_servers import SmtpInbox, WebhookReceiver

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus `seconds`: the tests' clock."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _loopback_targets(app: Flask) -> None:
    # The receivers the tests start listen on 127.0.0.1.
    app.config["ALERT_ALLOW_PRIVATE_TARGETS"] = True


@pytest.fixture
def smtp() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox().start()
    yield inbox
    inbox.stop()


@pytest.fixture
def hook(receiver: WebhookReceiver) -> str:
    """A webhook channel named `hook` to the receiver; returns its signing secret."""
    channels.add_channel("hook", receiver.url() + "?secret=s3cret", "admin@example.com", T0)
    return "s3cret"


@pytest.fixture
def add_rule() -> Callable[..., Any]:
    def add(name: str = "down", kind: str = "disconnected", channels: tuple = ("hook",), **kw: Any):
        return ruleset.add_rule(
            RuleSpec(name=name, kind=kind, channels=channels, **kw), "admin", T0
        )

    return add


@pytest.fixture
def fleet(make_device: Callable[..., Any]) -> Callable[..., list[Any]]:
    """`fleet("s1", 4)`: four devices of site s1 that beat last at T0."""

    def make(site: str, count: int, prefix: str | None = None) -> list[Any]:
        return [
            make_device(f"{prefix or site}-{index:02d}", now=T0, site=site)
            for index in range(count)
        ]

    return make


def heartbeat(device: Any, now: datetime) -> None:
    """A heartbeat from `device` received at `now`, through the heartbeat service."""
    from fleet.services.heartbeats import Telemetry, accept_heartbeat
    from fleet.tokens import hash_token

    accept_heartbeat(hash_token(device.token), Telemetry(), now)
