"""The status rules of DESIGN section 2, as pure functions.

No Flask, no database: every function takes the clock reading (`now`, aware UTC)
and the facts it needs, so the rules are tested exhaustively at the boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    CONNECTED = "connected"
    TEMPORARILY_OFFLINE = "temporarily_offline"
    DISCONNECTED = "disconnected"


class Source(StrEnum):
    DEVICE = "device"
    SYSTEM = "system"
    EXTERNAL_SERVICE = "external_service"
    OPERATOR = "operator"


class ReconnectState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Thresholds:
    """Heartbeat interval I, grace G and disconnect-after D, in seconds."""

    interval: int
    grace: int
    disconnect_after: int

    @property
    def offline_after(self) -> int:
        """The age past which a device is no longer connected (I + G)."""
        return self.interval + self.grace

    def is_valid(self) -> bool:
        """D must exceed I + G, or the temporarily-offline tier would be empty."""
        return self.interval > 0 and self.grace >= 0 and self.disconnect_after > self.offline_after


def resolve_thresholds(
    defaults: Thresholds,
    interval: int | None = None,
    grace: int | None = None,
    disconnect_after: int | None = None,
) -> Thresholds:
    """The fleet defaults with any per-device overrides applied."""
    return Thresholds(
        interval=defaults.interval if interval is None else interval,
        grace=defaults.grace if grace is None else grace,
        disconnect_after=defaults.disconnect_after
        if disconnect_after is None
        else disconnect_after,
    )


def jittered_interval(interval: int, percent: int, minimum: int, draw: float) -> int:
    """The interval a heartbeat reply asks for: `interval` moved by up to `percent` either way.

    `draw` is uniform in [0, 1). Devices that all start at a minute boundary
    drift apart instead of beating in lockstep. Never below `minimum` (the
    rate limit's spacing), unless `interval` itself is.
    """
    # On the heartbeat's hot path: no builtin call in the common case.
    jittered = round(interval * (1 + (draw - 0.5) * percent / 50))
    if jittered >= minimum:
        return jittered
    return minimum if interval >= minimum else interval


def heartbeat_age(now: datetime, last_heartbeat_at: datetime | None) -> float | None:
    """Seconds since the last heartbeat; a heartbeat stamped in the future counts as age 0."""
    if last_heartbeat_at is None:
        return None
    return max(0.0, (now - last_heartbeat_at).total_seconds())


def status_for_age(age: float | None, thresholds: Thresholds) -> Status:
    """The tier a heartbeat age falls in; a device never heard from is disconnected."""
    if age is None or age > thresholds.disconnect_after:
        return Status.DISCONNECTED
    if age > thresholds.offline_after:
        return Status.TEMPORARILY_OFFLINE
    return Status.CONNECTED


def status_at(now: datetime, last_heartbeat_at: datetime | None, thresholds: Thresholds) -> Status:
    """The status the heartbeat age alone implies at `now`."""
    return status_for_age(heartbeat_age(now, last_heartbeat_at), thresholds)


def is_stale(now: datetime, last_heartbeat_at: datetime | None, thresholds: Thresholds) -> bool:
    """True once the heartbeat is older than I + G: the ping service may then weigh in."""
    return status_at(now, last_heartbeat_at, thresholds) is not Status.CONNECTED


@dataclass(frozen=True)
class Deadlines:
    """When a device, silent from now on, leaves each tier.

    Stored per device so that a sweep is an indexed range query over the devices
    that are due instead of a scan of the fleet. A device is due once
    `now > deadline`, matching the `<=` boundaries of the status table.
    """

    offline_at: datetime | None
    disconnect_at: datetime | None


def deadlines_for(last_heartbeat_at: datetime | None, thresholds: Thresholds) -> Deadlines:
    """The deadlines that follow from a heartbeat received at `last_heartbeat_at`."""
    if last_heartbeat_at is None:
        return Deadlines(None, None)
    return Deadlines(
        offline_at=last_heartbeat_at + timedelta(seconds=thresholds.offline_after),
        disconnect_at=last_heartbeat_at + timedelta(seconds=thresholds.disconnect_after),
    )


def timeout_reason(status: Status, age: float | None, thresholds: Thresholds) -> str:
    """Why the sweep moved a device to `status`, naming the threshold and the age."""
    if age is None:
        return "never sent a heartbeat"
    if status is Status.DISCONNECTED:
        return f"no heartbeat for {age:.0f}s (disconnect after {thresholds.disconnect_after}s)"
    return (
        f"no heartbeat for {age:.0f}s (interval {thresholds.interval}s + grace {thresholds.grace}s)"
    )


def reconnect_state_at(
    now: datetime, state: str | None, expires_at: datetime | None
) -> ReconnectState | None:
    """The reconnect state as staff should see it: a pending request past its TTL is expired."""
    if state is None:
        return None
    if state == ReconnectState.PENDING and expires_at is not None and now >= expires_at:
        return ReconnectState.EXPIRED
    return ReconnectState(state)


@dataclass(frozen=True)
class PingVerdict:
    """What an external ping result does to a device."""

    applied: bool
    new_status: Status | None
    reason: str


def judge_ping(
    now: datetime,
    last_heartbeat_at: datetime | None,
    thresholds: Thresholds,
    status: Status,
    reachable: bool,
) -> PingVerdict:
    """Rule 3: a ping counts only when the heartbeat is stale, and never connects a device."""
    age = heartbeat_age(now, last_heartbeat_at)
    if not is_stale(now, last_heartbeat_at, thresholds):
        return PingVerdict(False, None, f"heartbeat is fresh ({age:.0f}s old); the device wins")
    if reachable:
        return PingVerdict(True, None, "reachable, app silent")
    if status is Status.CONNECTED:
        # The ping only hastens what the sweep would do: past D that is disconnected.
        return PingVerdict(True, status_for_age(age, thresholds), "unreachable by external ping")
    return PingVerdict(True, None, "unreachable")
