"""Reconnect requests: stored pending with a delay, one or many, each with its event."""

from datetime import timedelta

import pytest

from fleet.errors import DeviceNotFound
from fleet.services import reconnects
from fleet.timeutil import utcnow
from tests.helpers import device_row, event_kinds

T0 = utcnow().replace(microsecond=0)


def test_it_stores_a_pending_request_with_its_delay_and_expiry(app, make_device):
    make_device("kiosk-1", now=T0)
    device = reconnects.request_reconnect("kiosk-1", "ops@example.com", T0, delay_seconds=7)
    assert (device.reconnect_state, device.reconnect_delay_seconds) == ("pending", 7)
    assert device.reconnect_requested_by == "ops@example.com"
    ttl = app.config["RECONNECT_TTL_SECONDS"]
    assert device_row("kiosk-1").reconnect_expires_at == T0 + timedelta(seconds=ttl)
    assert event_kinds("kiosk-1") == ["registered", "reconnect_requested"]


def test_it_uses_the_configured_delay_when_none_is_given(app, make_device):
    make_device("kiosk-1", now=T0)
    device = reconnects.request_reconnect("kiosk-1", "ops", T0)
    assert device.reconnect_delay_seconds == app.config["RECONNECT_DELAY_SECONDS"]


def test_a_request_bumps_the_revision_so_no_earlier_read_overwrites_it(make_device):
    before = make_device("kiosk-1", now=T0).revision
    reconnects.request_reconnect("kiosk-1", "ops", T0)
    assert device_row("kiosk-1").revision == before + 1


def test_an_unknown_device_is_not_found(app):
    with pytest.raises(DeviceNotFound):
        reconnects.request_reconnect("nobody", "ops", T0)
