from datetime import UTC, datetime, timedelta

import pytest

from fleet import rules
from fleet.rules import ReconnectState, Status, Thresholds

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
DEFAULTS = Thresholds(interval=30, grace=30, disconnect_after=300)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0, Status.CONNECTED),
        (59.999, Status.CONNECTED),
        (60, Status.CONNECTED),  # exactly I + G is still connected
        (60.001, Status.TEMPORARILY_OFFLINE),
        (300, Status.TEMPORARILY_OFFLINE),  # exactly D is still temporarily offline
        (300.001, Status.DISCONNECTED),
        (86_400, Status.DISCONNECTED),
    ],
)
def test_it_places_each_age_in_its_tier(age, expected):
    assert rules.status_at(NOW, ago(age), DEFAULTS) is expected


def test_it_treats_a_device_never_heard_from_as_disconnected():
    assert rules.status_at(NOW, None, DEFAULTS) is Status.DISCONNECTED


def test_it_treats_a_heartbeat_stamped_in_the_future_as_fresh():
    assert rules.heartbeat_age(NOW, NOW + timedelta(seconds=90)) == 0
    assert rules.status_at(NOW, NOW + timedelta(seconds=90), DEFAULTS) is Status.CONNECTED


def test_it_applies_per_device_overrides():
    thresholds = rules.resolve_thresholds(DEFAULTS, interval=10, grace=5, disconnect_after=20)
    assert thresholds == Thresholds(10, 5, 20)
    assert rules.status_at(NOW, ago(15), thresholds) is Status.CONNECTED
    assert rules.status_at(NOW, ago(16), thresholds) is Status.TEMPORARILY_OFFLINE
    assert rules.status_at(NOW, ago(21), thresholds) is Status.DISCONNECTED


def test_it_keeps_defaults_for_overrides_not_given():
    assert rules.resolve_thresholds(DEFAULTS, grace=0) == Thresholds(30, 0, 300)


@pytest.mark.parametrize(
    ("thresholds", "valid"),
    [
        (Thresholds(30, 30, 300), True),
        (Thresholds(30, 30, 60), False),
        (Thresholds(0, 0, 10), False),
    ],
)
def test_it_requires_disconnect_after_to_exceed_interval_plus_grace(thresholds, valid):
    assert thresholds.is_valid() is valid


def test_its_deadlines_agree_with_the_tiers():
    deadlines = rules.deadlines_for(NOW, DEFAULTS)
    assert deadlines.offline_at == NOW + timedelta(seconds=60)
    assert deadlines.disconnect_at == NOW + timedelta(seconds=300)
    at_offline_deadline = deadlines.offline_at
    assert rules.status_at(at_offline_deadline, NOW, DEFAULTS) is Status.CONNECTED
    assert rules.status_at(deadlines.disconnect_at, NOW, DEFAULTS) is Status.TEMPORARILY_OFFLINE


def test_it_has_no_deadlines_without_a_heartbeat():
    assert rules.deadlines_for(None, DEFAULTS) == rules.Deadlines(None, None)


def test_it_names_the_threshold_and_age_in_timeout_reasons():
    assert "interval 30s + grace 30s" in rules.timeout_reason(
        Status.TEMPORARILY_OFFLINE, 61, DEFAULTS
    )
    assert "disconnect after 300s" in rules.timeout_reason(Status.DISCONNECTED, 301, DEFAULTS)
    assert "301s" in rules.timeout_reason(Status.DISCONNECTED, 301, DEFAULTS)


def test_it_shows_a_pending_reconnect_past_its_ttl_as_expired():
    expires = NOW + timedelta(seconds=1)
    assert rules.reconnect_state_at(NOW, "pending", expires) is ReconnectState.PENDING
    assert rules.reconnect_state_at(expires, "pending", expires) is ReconnectState.EXPIRED
    assert rules.reconnect_state_at(expires, "delivered", expires) is ReconnectState.DELIVERED
    assert rules.reconnect_state_at(NOW, None, None) is None


class TestPingRules:
    def test_it_ignores_a_ping_when_the_heartbeat_is_fresh(self):
        verdict = rules.judge_ping(NOW, ago(60), DEFAULTS, Status.CONNECTED, reachable=False)
        assert not verdict.applied
        assert verdict.new_status is None
        assert "fresh" in verdict.reason

    def test_it_moves_a_stale_connected_device_offline_when_unreachable(self):
        verdict = rules.judge_ping(NOW, ago(61), DEFAULTS, Status.CONNECTED, reachable=False)
        assert verdict.applied
        assert verdict.new_status is Status.TEMPORARILY_OFFLINE

    @pytest.mark.parametrize("status", list(Status))
    def test_it_never_connects_a_device_that_answers_a_ping(self, status):
        verdict = rules.judge_ping(NOW, ago(400), DEFAULTS, status, reachable=True)
        assert verdict.applied
        assert verdict.new_status is None
        assert verdict.reason == "reachable, app silent"

    def test_an_unreachable_device_silent_past_d_goes_straight_to_disconnected(self):
        verdict = rules.judge_ping(NOW, ago(400), DEFAULTS, Status.CONNECTED, reachable=False)
        assert verdict.new_status is Status.DISCONNECTED

    def test_it_leaves_a_disconnected_device_disconnected_when_unreachable(self):
        verdict = rules.judge_ping(NOW, ago(400), DEFAULTS, Status.DISCONNECTED, reachable=False)
        assert verdict.applied
        assert verdict.new_status is None


@pytest.mark.parametrize(
    ("interval", "percent", "draw", "expected"),
    [
        (30, 5, 0.5, 30),  # the middle of the band: the configured interval
        (30, 5, 0.0, 28),  # 28.5, the band's low end
        (30, 5, 0.9999, 31),  # just under 31.5, its high end
        (30, 0, 0.0, 30),  # off: always the interval
        (30, 0, 0.9999, 30),
        (600, 5, 0.0, 570),
        (11, 20, 0.0, 10),  # 8.8 would be under the rate limit's spacing
        (8, 20, 0.0, 8),  # an interval under the spacing is never made smaller
        (8, 20, 0.9999, 10),  # nor larger than the band allows
    ],
)
def test_it_jitters_the_interval_within_its_band_never_below_the_minimum(
    interval, percent, draw, expected
):
    assert rules.jittered_interval(interval, percent, 10, draw) == expected
