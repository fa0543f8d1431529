"""Secrets handed out once and stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

DEVICE_TOKEN_PREFIX = "pbd_"
SERVICE_TOKEN_PREFIX = "pbs_"


def new_token(prefix: str) -> str:
    """A fresh random token; the prefix tells people which kind it is."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 of a token, hex. Tokens are random, so no salt or stretching is needed."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hashes_match(stored_hash: str, presented_token: str) -> bool:
    """Compare a presented token with a stored hash in constant time."""
    return hmac.compare_digest(stored_hash, hash_token(presented_token))


def secrets_match(expected: str, presented: str) -> bool:
    """Compare two shared secrets (such as the enrolment key) in constant time."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))
