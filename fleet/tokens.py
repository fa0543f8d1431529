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
    """The SHA-256 of a token, hex. Tokens are random, so no salt or stretching is needed.

    Tokens are looked up by this hash, so the only comparison an attacker can
    time is between hashes, which says nothing about the token itself.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def secrets_match(expected: str, presented: str) -> bool:
    """Compare two shared secrets (such as the enrolment key) in constant time."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))
