from datetime import timedelta

import pytest

from fleet.errors import DeviceNotFound, InvalidInput
from fleet.services.overrides import Overrides, set_overrides
from fleet.services.sweep import enforce_timeouts
from fleet.timeutil import utcnow
from tests.helpers import device_row, events_of

T0 = utcnow().replace(microsecond=0)


def test_it_moves_the_deadlines_so_the_sweep_uses_the_new_thresholds(make_device):
    make_device("alpha", now=T0)
    set_overrides("alpha", Overrides(disconnect_after_seconds=100), "admin@example.com", T0)
    enforce_timeouts(T0 + timedelta(seconds=101))
    assert events_of("alpha")[-1] == ("connected", "disconnected", "system")
    set_overrides(
        "alpha",
        Overrides(heartbeat_interval_seconds=600, disconnect_after_seconds=900),
        "admin@example.com",
        T0 + timedelta(seconds=102),
    )
    assert device_row("alpha").offline_due_at == T0 + timedelta(seconds=630)


def test_it_records_who_changed_what(app, make_device):
    from fleet.extensions import db
    from fleet.models import DeviceEvent

    make_device("alpha", now=T0)
    set_overrides("alpha", Overrides(grace_period_seconds=10), "admin@example.com", T0)
    event = db.session.execute(
        db.select(DeviceEvent).where(DeviceEvent.kind == "settings_changed")
    ).scalar_one()
    assert event.actor == "admin@example.com" and event.source == "operator"
    assert event.details["after"]["grace_period_seconds"] == 10
    assert event.details["before"]["grace_period_seconds"] is None


@pytest.mark.parametrize(
    "overrides",
    [
        Overrides(heartbeat_interval_seconds=200, grace_period_seconds=100),
        Overrides(disconnect_after_seconds=60),
        Overrides(heartbeat_interval_seconds=0),
        Overrides(grace_period_seconds=-1),
    ],
)
def test_it_refuses_thresholds_that_break_the_rules(make_device, overrides):
    make_device("alpha", now=T0)
    with pytest.raises(InvalidInput):
        set_overrides("alpha", overrides, "admin@example.com", T0)
    assert device_row("alpha").heartbeat_interval_seconds is None


def test_it_says_when_the_device_does_not_exist(app):
    with pytest.raises(DeviceNotFound):
        set_overrides("nope", Overrides(), "admin@example.com", T0)
