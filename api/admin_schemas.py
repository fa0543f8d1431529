"""Schemas of the admin APIs (ping coordination and integrations), declared once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from flask import current_app
from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from api.body import nests_deeper_than
from api.schemas import RequestBody, Schema, Uid, whole_number
from fleet import rules
from fleet.config import COMMAND_KIND_NAMES
from fleet.services.events import ExpectedOff
from fleet.services.pings import MAX_PAGE, ping_diagnosis
from fleet.services.queries import (
    DEFAULT_PER_PAGE,
    DEFAULT_SORT,
    EXPECTED_OFF_FILTERS,
    MAX_PAGE_NUMBER,
    MAX_PER_PAGE,
    SORTS,
)

MAX_BATCH = 500
# Read from the one list of each, so the schema and the OpenAPI document follow them.
StatusName = Literal[tuple(status.value for status in rules.Status)]  # type: ignore[valid-type]
SortName = Literal[tuple(SORTS)]  # type: ignore[valid-type]
ExpectedOffFilter = Literal[EXPECTED_OFF_FILTERS]  # type: ignore[valid-type]
ExpectedOffName = Literal[tuple(state.value for state in ExpectedOff)]  # type: ignore[valid-type]
ReconnectStateName = Literal[tuple(state.value for state in rules.ReconnectState)]  # type: ignore[valid-type]


class QueryString(Schema):
    # Query strings are text, so numbers and booleans are parsed leniently
    # ("2", "true"); unknown parameters are ignored like unknown body fields.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


# --- ping coordination ----------------------------------------------------------


class NeedingPingQuery(QueryString):
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    after: str | None = Field(
        default=None, max_length=128, description="The `next_after` of the previous page."
    )


class PingTargetOut(Schema):
    uid: str
    address: str = Field(description="The last address the device's requests came from.")
    status: str
    last_heartbeat_at: datetime | None
    last_ping_reachable: bool | None
    last_ping_checked_at: datetime | None


class NeedingPingResponse(Schema):
    items: list[PingTargetOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at the end")


class PingRequest(RequestBody):
    uid: str = Uid
    reachable: bool
    latency_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    # Sent as text in JSON, so this one field is parsed leniently; it must carry a zone.
    checked_at: AwareDatetime | None = Field(
        default=None, strict=False, description="When the check ran; defaults to receipt."
    )

    @field_validator("checked_at")
    @classmethod
    def checked_at_is_plausible(cls, value: datetime | None) -> datetime | None:
        return plausible_utc(value)


def plausible_utc(value: datetime | None) -> datetime | None:
    """In UTC, and not absurdly far in the past (year 1 with a zone overflows)."""
    if value is None:
        return None
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if value.year < 2000:
        raise ValueError("must be after the year 2000")
    return value


class PingOutcomeOut(Schema):
    uid: str
    applied: bool
    outcome: Literal["applied", "ignored"]
    reason: str
    status: str
    status_changed: bool


class PingBatchRequest(RequestBody):
    # Items are validated one by one by the view, so a bad item is answered in place.
    results: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class PingBatchItemError(Schema):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class PingBatchItem(Schema):
    index: int
    uid: str | None
    outcome: Literal["applied", "ignored", "error"]
    applied: bool
    reason: str | None = None
    status: str | None = None
    status_changed: bool = False
    error: PingBatchItemError | None = None


class PingBatchResponse(Schema):
    results: list[PingBatchItem]
    applied: int
    ignored: int
    errors: int


# --- integrations -------------------------------------------------------------


class DeviceListQuery(QueryString):
    status: StatusName | None = None
    site: str | None = Field(default=None, max_length=200)
    flapping: bool | None = None
    expected_off: ExpectedOffFilter | None = Field(
        default=None, description="off_hours, maintenance, or none (expected on)"
    )
    q: str | None = Field(default=None, max_length=200)
    sort: SortName = DEFAULT_SORT
    page: int = Field(default=1, ge=1, le=MAX_PAGE_NUMBER)
    per_page: int = Field(default=DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)


class TelemetryOut(Schema):
    battery_level: float | None
    wifi_strength: int | None
    app_version: str | None
    uptime_seconds: int | None
    extra: dict[str, Any] | None = Field(
        description="null, with extra_withheld true, when the stored value nests too deeply"
    )
    extra_withheld: bool = Field(
        default=False,
        description="true when the stored extra nests deeper than EXTRA_MAX_DEPTH "
        "(stored before that bound) and is not served",
    )


def telemetry_out(device: Any) -> TelemetryOut:
    """A device's telemetry, withholding an `extra` too deep to serialise.

    Heartbeats are bounded at the door, but a value stored before the bound (or
    under a higher one) must not turn every page that lists the device into a 500.
    """
    withheld = device.extra is not None and nests_deeper_than(
        device.extra, current_app.config["EXTRA_MAX_DEPTH"]
    )
    return TelemetryOut(
        battery_level=device.battery_level,
        wifi_strength=device.wifi_strength,
        app_version=device.app_version,
        uptime_seconds=device.uptime_seconds,
        extra=None if withheld else device.extra,
        extra_withheld=withheld,
    )


class PingDiagnosisOut(Schema):
    diagnosis: str | None = Field(
        description='"reachable, app silent" or "unreachable"; null if none since the heartbeat'
    )
    reachable: bool | None
    latency_ms: float | None
    checked_at: datetime | None
    received_at: datetime | None


class ReconnectOut(Schema):
    state: ReconnectStateName | None
    requested_at: datetime | None
    requested_by: str | None
    delay_seconds: int | None
    expires_at: datetime | None
    delivered_at: datetime | None


class DeviceOut(Schema):
    uid: str
    name: str | None
    site: str | None
    status: str
    status_reason: str
    status_source: str
    status_changed_at: datetime
    expected_off: ExpectedOffName | None = Field(
        description="off_hours or maintenance while the device is expected off; null: expected on"
    )
    last_heartbeat_at: datetime | None
    heartbeat_age_seconds: float | None
    last_address: str | None
    telemetry: TelemetryOut
    ping: PingDiagnosisOut
    reconnect: ReconnectOut
    flapping: bool
    flap_count: int = Field(description="Status events in the flapping window.")


class DeviceListResponse(Schema):
    items: list[DeviceOut]
    total: int
    page: int
    per_page: int
    pages: int


class ReconnectRequest(RequestBody):
    delay_seconds: whole_number(0, 3600) | None = Field(
        default=None, description="Defaults to RECONNECT_DELAY_SECONDS."
    )


class ReconnectResponse(Schema):
    uid: str
    reconnect: ReconnectOut


CommandKindName = Literal[COMMAND_KIND_NAMES]  # type: ignore[valid-type]


class CommandRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "reboot", "params": {"delay_seconds": 30}}]}
    )

    kind: CommandKindName = Field(description="Only the kinds in COMMAND_KINDS are accepted.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Optional: `delay_seconds` (0-3600) before acting."
    )


class CommandDetail(Schema):
    id: int
    kind: str
    params: dict[str, Any]
    state: str = Field(
        description="pending, delivered, ok, failed, unacknowledged, expired or replaced."
    )
    requested_by: str
    issued_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    result: str | None
    message: str | None


class CommandCreated(CommandDetail):
    replaced_id: int | None = Field(
        default=None, description="The pending command of the same kind this one replaced."
    )


class CommandListResponse(Schema):
    items: list[CommandDetail]


class BulkFilter(RequestBody):
    """Which devices: the dashboard's filters; at least one is required."""

    status: StatusName | None = None
    site: str | None = Field(default=None, max_length=200)
    flapping: bool | None = None
    q: str | None = Field(default=None, max_length=200)


class BulkCommandRequest(CommandRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"kind": "refresh_content", "filter": {"site": "Berlin HQ"}}]
        }
    )

    filter: BulkFilter = Field(
        description="The devices to ask, as the dashboard filters them; an empty filter is "
        "refused, so nobody asks the whole fleet by accident."
    )


class BulkActionOut(Schema):
    id: int
    kind: str
    params: dict[str, Any] | None
    state: str = Field(description="running (a chunk at a time) or done.")
    total: int = Field(description="Devices that matched the filter when the run started.")
    done: int
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None


def bulk_action_out(action: Any) -> BulkActionOut:
    """A bulk action's progress as the admin API shows it."""
    return BulkActionOut(
        id=action.id,
        kind=action.kind,
        params=action.params,
        state=action.state,
        total=action.total,
        done=action.done,
        requested_by=action.actor,
        requested_at=action.requested_at,
        finished_at=action.finished_at,
    )


def command_detail(command: Any) -> dict[str, Any]:
    """A command's fields as the admin API and the dashboard show them."""
    return {name: getattr(command, name) for name in CommandDetail.model_fields}


def reconnect_out(device: Any, now: datetime) -> ReconnectOut:
    """A device's reconnect state as staff see it (a pending request past its TTL is expired)."""
    state = rules.reconnect_state_at(now, device.reconnect_state, device.reconnect_expires_at)
    return ReconnectOut(
        state=None if state is None else state.value,
        requested_at=device.reconnect_requested_at,
        requested_by=device.reconnect_requested_by,
        delay_seconds=device.reconnect_delay_seconds,
        expires_at=device.reconnect_expires_at,
        delivered_at=device.reconnect_delivered_at,
    )


def device_out(device: Any, flaps: int, flap_threshold: int, now: datetime) -> DeviceOut:
    """The integration API's view of one device."""
    age = rules.heartbeat_age(now, device.last_heartbeat_at)
    return DeviceOut(
        uid=device.uid,
        name=device.name,
        site=device.site,
        status=device.status,
        status_reason=device.status_reason,
        status_source=device.status_source,
        status_changed_at=device.status_changed_at,
        expected_off=device.expected_off,
        last_heartbeat_at=device.last_heartbeat_at,
        heartbeat_age_seconds=None if age is None else round(age, 3),
        last_address=device.last_address,
        telemetry=telemetry_out(device),
        ping=PingDiagnosisOut(
            diagnosis=ping_diagnosis(device),
            reachable=device.ping_reachable,
            latency_ms=device.ping_latency_ms,
            checked_at=device.ping_checked_at,
            received_at=device.ping_received_at,
        ),
        reconnect=reconnect_out(device, now),
        flapping=flaps >= flap_threshold,
        flap_count=flaps,
    )
