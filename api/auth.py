"""Bearer-token authentication for devices, cached per request on `g`."""

from __future__ import annotations

from flask import request
from flask_limiter.util import get_remote_address

from fleet.errors import Unauthorized
from fleet.services import heartbeats

_UNSET = object()
_CACHE_KEY = "pulseboard.device_snapshot"


def bearer_token() -> str | None:
    """The token from `Authorization: Bearer ...`, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticated_device() -> int | None:
    """The id of the device whose token was presented, looked up once per request."""
    # Cached in the request's environ, not on `g`: an app context (and its `g`)
    # can outlive a request, as it does under the test client.
    cached = request.environ.get(_CACHE_KEY, _UNSET)
    if cached is _UNSET:
        token = bearer_token()
        cached = heartbeats.authenticate_device(token) if token else None
        request.environ[_CACHE_KEY] = cached
    return cached


def require_device() -> tuple[int, str]:
    """The authenticated device's id and the token it presented, or 401."""
    device_id = authenticated_device()
    if device_id is None:
        raise Unauthorized("missing, unknown or rotated device token")
    return device_id, bearer_token()


def device_rate_key() -> str:
    """Limits on a valid device are its own, whichever address it comes from."""
    device_id = authenticated_device()
    return f"device:{device_id}" if device_id else f"addr:{get_remote_address()}"


def has_valid_device() -> bool:
    return authenticated_device() is not None


def lacks_valid_device() -> bool:
    return authenticated_device() is None
