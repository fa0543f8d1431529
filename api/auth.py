"""Bearer tokens on the device API, and the per-address allowance for bad ones."""

from __future__ import annotations

from typing import NoReturn

from flask import current_app, request
from flask_limiter.util import get_remote_address
from limits import parse

from api import ratelimits
from fleet.errors import Unauthorized
from fleet.extensions import limiter
from fleet.tokens import hash_token

_HASH_KEY = "pulseboard.token_hash"


def bearer_token() -> str | None:
    """The token from `Authorization: Bearer ...`, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def presented_token_hash() -> str | None:
    """The hash of the presented token, computed once per request (kept in its environ)."""
    if _HASH_KEY not in request.environ:
        token = bearer_token()
        request.environ[_HASH_KEY] = hash_token(token) if token else None
    return request.environ[_HASH_KEY]


def device_rate_key() -> str:
    """A device's limits follow its token, whichever address it comes from.

    Keying by the token's hash needs no database lookup before the limit is
    checked; a token that matches no device only limits itself.
    """
    token_hash = presented_token_hash()
    return f"device:{token_hash}" if token_hash else f"addr:{get_remote_address()}"


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
