"""Bearer-token authentication for devices, cached per request on `g`."""

from __future__ import annotations

from flask import request
from flask_limiter.util import get_remote_address
from sqlalchemy import Row

from fleet.errors import Unauthorized
from fleet.services import devices

_UNSET = object()
_CACHE_KEY = "pulseboard.device_snapshot"


def bearer_token() -> str | None:
    """The token from `Authorization: Bearer ...`, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticated_device() -> Row | None:
    """The snapshot of the device whose token was presented, looked up once per request."""
    # Cached in the request's environ, not on `g`: an app context (and its `g`)
    # can outlive a request, as it does under the test client.
    cached = request.environ.get(_CACHE_KEY, _UNSET)
    if cached is _UNSET:
        token = bearer_token()
        cached = devices.find_device_by_token(token) if token else None
        request.environ[_CACHE_KEY] = cached
    return cached


def require_device() -> Row:
    """The authenticated device, or 401."""
    snapshot = authenticated_device()
    if snapshot is None:
        raise Unauthorized("missing, unknown or rotated device token")
    return snapshot


def device_rate_key() -> str:
    """Limits on a valid device are its own, whichever address it comes from."""
    snapshot = authenticated_device()
    return f"device:{snapshot.id}" if snapshot else f"addr:{get_remote_address()}"


def has_valid_device() -> bool:
    return authenticated_device() is not None


def lacks_valid_device() -> bool:
    return authenticated_device() is None
