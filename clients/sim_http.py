"""The device API as the simulator sees it: JSON over HTTP with the standard library only."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

UNREACHABLE = 0  # the status of a reply that never came: refused, reset or timed out


@dataclass(frozen=True)
class Reply:
    """One answer from the server; `status` is 0 when the server could not be reached."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None

    @property
    def reachable(self) -> bool:
        return self.status != UNREACHABLE and self.status < 500

    @property
    def error_message(self) -> str:
        error = self.body.get("error")
        return error.get("message", "") if isinstance(error, dict) else ""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class DeviceApi:
    """Register and heartbeat calls against one server."""

    def __init__(self, server: str, enrollment_key: str, timeout: float = 5.0) -> None:
        self.server = server.rstrip("/")
        self.enrollment_key = enrollment_key
        self.timeout = timeout

    def register(self, profile: dict[str, Any], current_token: str | None = None) -> Reply:
        """POST /api/devices/register with the fleet's enrolment key.

        A device enrolled before proves it is itself with the token it holds.
        """
        headers = {"X-Enrollment-Key": self.enrollment_key}
        if current_token:
            headers["Authorization"] = f"Bearer {current_token}"
        return self._post("/api/devices/register", profile, headers)

    def heartbeat(self, token: str, telemetry: dict[str, Any]) -> Reply:
        """POST /api/devices/heartbeat with the device's token."""
        return self._post("/api/devices/heartbeat", telemetry, {"Authorization": f"Bearer {token}"})

    def screenshot(self, token: str, image: bytes, command_id: int | None = None) -> Reply:
        """POST /api/devices/screenshots: the image's bytes, for the command that asked."""
        path = "/api/devices/screenshots"
        if command_id is not None:
            path += f"?command_id={command_id}"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
        return self._send(path, image, headers)

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        return self._send(
            path, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}
        )

    def _send(self, path: str, data: bytes, headers: dict[str, str]) -> Reply:
        request = urllib.request.Request(
            self.server + path, data=data, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Reply(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                return Reply(
                    error.code,
                    _json(error.read()),
                    parse_retry_after(error.headers.get("Retry-After")),
                )
        # URLError, refused and reset connections and timeouts are all OSErrors.
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            return Reply(UNREACHABLE, {"error": {"message": str(reason)}})


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
