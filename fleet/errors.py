"""Domain errors. The API maps each to one HTTP status and the error shape."""

from __future__ import annotations

from typing import Any


class FleetError(Exception):
    """Base of the errors a caller can cause; `code` is the machine-readable name."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(FleetError):
    code = "invalid_input"
    http_status = 422


class Unauthorized(FleetError):
    code = "unauthorized"
    http_status = 401


class Forbidden(FleetError):
    code = "forbidden"
    http_status = 403


class DeviceNotFound(FleetError):
    code = "device_not_found"
    http_status = 404


class EnrolmentRefused(FleetError):
    """A known uid tried to enrol again without its current token or an operator's leave."""

    code = "already_enrolled"
    http_status = 409


class UserNotFound(FleetError):
    code = "user_not_found"
    http_status = 404


class AlreadyExists(FleetError):
    code = "already_exists"
    http_status = 409


class Contention(FleetError):
    """Concurrent writers kept winning the race for one row; the client may retry."""

    code = "contention"
    http_status = 503


class NotFound(FleetError):
    """A named thing other than a device (a channel, a rule, an incident) does not exist."""

    code = "not_found"
    http_status = 404


class StateConflict(FleetError):
    """Not in a state that allows the action (e.g. acknowledging a resolved incident)."""

    code = "invalid_state"
    http_status = 409


class InvalidField(InvalidInput):
    """A bad field found past the schema (a time zone, a cron expression); details name it."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid field(s): {field}: {message}", {"fields": {field: message}})
