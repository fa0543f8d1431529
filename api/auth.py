"""Bearer tokens on the device API, and the per-address allowance for bad ones."""

from __future__ import annotations

from typing import NoReturn

from flask import current_app
from flask_limiter.util import get_remote_address
from limits import parse

from api import ratelimits
from fleet.context import current_request
from fleet.errors import Unauthorized
from fleet.extensions import limiter


def bearer_token() -> str | None:
    """The token from `Authorization: Bearer ...`, or None."""
    header = current_request().headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def refuse_credentials(message: str) -> NoReturn:
    """401, counted against the client address; 429 once the address has used its allowance.

    Only failed attempts are counted, so valid devices behind the same address
    (a whole site behind one NAT) are never held back by a misconfigured one.
    """
    allowance = parse(f"{current_app.config['BAD_TOKEN_MAX_PER_MINUTE']} per minute")
    address = get_remote_address()
    if not limiter.enabled or ratelimits.storage().hit(allowance, "bad-credentials", address):
        raise Unauthorized(message)
    raise ratelimits.over_limit(
        allowance,
        "bad-credentials",
        address,
        message="too many failed credentials from this address; retry later",
    )
