"""Request and response schemas, declared once: they validate bodies and describe the API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from api.body import nests_deeper_than


def _integral_number(value: Any) -> Any:
    # JSON has one number type: 67.0 is an integer to JSON Schema (and to the
    # OpenAPI document), so an integral float is taken as the integer it is.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def whole_number(ge: int, le: int) -> Any:
    """An integer in [ge, le] that also takes an integral JSON number such as 67.0."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_integral_number)]


Uid = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class Schema(BaseModel):
    # Validators are built on a schema's first use, not when the module is
    # imported: every `flask` command imports the API to register its routes.
    model_config = ConfigDict(defer_build=True)


class RequestBody(Schema):
    # Unknown fields are ignored so that a newer kiosk app can talk to an older server.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


class RegisterRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"uid": "kiosk-0042", "name": "Lobby screen", "site": "berlin-hq"}]
        }
    )

    uid: str = Uid
    name: str | None = Field(default=None, max_length=200)
    site: str | None = Field(default=None, max_length=200)
    app_version: str | None = Field(default=None, max_length=64)
    enrollment_key: str | None = Field(default=None, max_length=256)


class RegisterResponse(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "uid": "kiosk-0042",
                    "token": "pbd_3q2-7Wx...",
                    "created": True,
                    "status": "connected",
                    "heartbeat_interval_seconds": 30,
                }
            ]
        }
    )

    uid: str
    token: str = Field(description="Shown once; only its hash is stored.")
    created: bool
    status: str
    heartbeat_interval_seconds: int


class AckIn(RequestBody):
    id: whole_number(1, 2**62) = Field(description="The command's id, from a heartbeat reply.")
    result: Literal["ok", "failed"]
    message: str | None = Field(default=None, max_length=500)


class HeartbeatRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "battery_level": 87.5,
                    "wifi_strength": -61,
                    "app_version": "4.2.1",
                    "uptime_seconds": 86400,
                }
            ]
        }
    )

    battery_level: float | None = Field(default=None, ge=0, le=100)
    wifi_strength: whole_number(-120, 0) | None = Field(default=None, description="dBm")
    app_version: str | None = Field(default=None, max_length=64)
    uptime_seconds: whole_number(0, 10**11) | None = None
    extra: dict[str, Any] | None = Field(
        default=None,
        description="Free-form, bounded in size (EXTRA_MAX_BYTES) and nesting (EXTRA_MAX_DEPTH).",
    )
    acks: list[AckIn] | None = Field(
        default=None,
        max_length=20,
        description="Results of commands delivered in earlier replies; optional.",
    )

    @field_validator("extra")
    @classmethod
    def extra_is_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        from flask import current_app

        if value is None:
            return value
        # Depth first: it bounds the recursion json.dumps needs to measure the size.
        depth = current_app.config["EXTRA_MAX_DEPTH"]
        if nests_deeper_than(value, depth):
            raise ValueError(f"must nest objects and arrays at most {depth} levels deep")
        limit = current_app.config["EXTRA_MAX_BYTES"]
        if len(json.dumps(value, separators=(",", ":"))) > limit:
            raise ValueError(f"must serialise to at most {limit} bytes of JSON")
        return value


class CommandOut(Schema):
    id: int
    kind: Literal["reconnect", "restart_app", "reboot", "refresh_content", "screenshot"]
    params: dict[str, Any]
    issued_at: datetime


class ScreenshotResponse(Schema):
    id: int
    media_type: str
    size: int
    taken_at: datetime


class HeartbeatResponse(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "connected",
                    "server_time": "2026-11-28T12:00:00Z",
                    "heartbeat_interval_seconds": 30,
                    "should_reconnect": False,
                    "reconnect_delay_seconds": 0,
                }
            ]
        }
    )

    status: str
    server_time: datetime
    heartbeat_interval_seconds: int = Field(
        description="When to beat next: the configured interval moved at random by up to "
        "HEARTBEAT_JITTER_PERCENT (5 %) either way, so a fleet does not beat in lockstep."
    )
    should_reconnect: bool
    reconnect_delay_seconds: int
    commands: list[CommandOut] = Field(
        default_factory=list, description="Commands to carry out, each delivered once."
    )


class ErrorBody(Schema):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(Schema):
    error: ErrorBody
