"""Enrolment: register, re-register with a rotated token, or added by an administrator."""

from datetime import timedelta

import pytest

from fleet.errors import AlreadyExists, EnrolmentRefused, InvalidInput, Unauthorized
from fleet.services import enrolment
from fleet.timeutil import utcnow
from tests.conftest import ENROLLMENT_KEY
from tests.helpers import device_row, event_kinds, events_of, snapshot_of

T0 = utcnow().replace(microsecond=0)


def test_it_enrols_a_new_device_connected_with_its_deadlines(app):
    result = enrolment.register_device("kiosk-1", T0, site="Lobby", address="10.0.0.7")
    assert (result.uid, result.created, result.status) == ("kiosk-1", True, "connected")
    assert result.heartbeat_interval_seconds == app.config["HEARTBEAT_INTERVAL_SECONDS"]
    stored = device_row("kiosk-1")
    assert (stored.site, stored.last_address, stored.last_heartbeat_at) == ("Lobby", "10.0.0.7", T0)
    assert stored.offline_due_at > T0
    assert event_kinds("kiosk-1") == ["registered"]


def test_re_enrolling_rotates_the_token_and_keeps_the_profile(app):
    first = enrolment.register_device("kiosk-1", T0, site="Lobby")
    second = enrolment.register_device("kiosk-1", T0, name="Front desk", current_token=first.token)
    assert not second.created
    assert snapshot_of(first.token) is None
    assert snapshot_of(second.token).uid == "kiosk-1"
    stored = device_row("kiosk-1")
    assert (stored.site, stored.name) == ("Lobby", "Front desk")
    assert event_kinds("kiosk-1") == ["registered", "re_enrolled"]


def test_re_enrolling_a_disconnected_device_connects_it(make_device):
    device = make_device("kiosk-1", now=T0, status="disconnected")
    enrolment.register_device("kiosk-1", T0, current_token=device.token)
    assert device_row("kiosk-1").status == "connected"
    assert events_of("kiosk-1") == [("disconnected", "connected", "device")]


def test_a_known_uid_without_its_token_or_a_leave_is_refused(app):
    first = enrolment.register_device("kiosk-1", T0)
    for presented in (None, "pbd_wrong"):
        with pytest.raises(EnrolmentRefused):
            enrolment.register_device("kiosk-1", T0, current_token=presented)
    assert snapshot_of(first.token).uid == "kiosk-1"


def test_a_leave_is_used_once_and_ends_on_time(app):
    enrolment.register_device("kiosk-1", T0)
    until = enrolment.allow_re_enrolment("kiosk-1", "ops@example.com", T0, minutes=10)
    assert until == T0 + timedelta(minutes=10)
    enrolment.register_device("kiosk-1", T0 + timedelta(minutes=1))
    with pytest.raises(EnrolmentRefused):
        enrolment.register_device("kiosk-1", T0 + timedelta(minutes=2))
    enrolment.allow_re_enrolment("kiosk-1", "ops@example.com", T0, minutes=10)
    with pytest.raises(EnrolmentRefused):
        enrolment.register_device("kiosk-1", T0 + timedelta(minutes=10))


@pytest.mark.parametrize("minutes", [0, -5, 7 * 24 * 60 + 1])
def test_a_leave_has_a_sane_length(app, minutes):
    enrolment.register_device("kiosk-1", T0)
    with pytest.raises(InvalidInput):
        enrolment.allow_re_enrolment("kiosk-1", "ops@example.com", T0, minutes=minutes)


def test_a_device_added_by_an_administrator_waits_disconnected_for_its_first_heartbeat(app):
    token = enrolment.add_device("kiosk-1", T0, name="Front desk")
    stored = device_row("kiosk-1")
    assert (stored.status, stored.status_source, stored.last_heartbeat_at) == (
        "disconnected",
        "system",
        None,
    )
    assert snapshot_of(token).uid == "kiosk-1"


def test_adding_a_known_uid_is_refused(make_device):
    make_device("kiosk-1")
    with pytest.raises(AlreadyExists):
        enrolment.add_device("kiosk-1", T0)


@pytest.mark.parametrize("presented", [None, "", "wrong", 123, ENROLLMENT_KEY + "x"])
def test_only_the_fleets_key_enrols(app, presented):
    with pytest.raises(Unauthorized):
        enrolment.check_enrollment_key(presented)


def test_the_fleets_key_enrols(app):
    enrolment.check_enrollment_key(ENROLLMENT_KEY)
