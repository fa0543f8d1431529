"""Bearer tokens on the device and admin APIs, and the failed-credentials budget they share."""

from __future__ import annotations

from typing import NoReturn

from flask import Request

from fleet import ratelimits
from fleet.context import current_request
from fleet.errors import Unauthorized


def bearer_token(request: Request | None = None) -> str | None:
    """The token from `Authorization: Bearer ...` of `request` (else the current one), or None."""
    header = (request or current_request()).headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def refuse_credentials(message: str) -> NoReturn:
    """401, counted against the client address; 429 once the address has used its allowance."""
    ratelimits.count_failed_credentials(current_request().remote_addr)
    raise Unauthorized(message)
