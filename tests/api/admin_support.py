"""Helpers for the admin API tests: service tokens and authorised requests."""

from __future__ import annotations

from fleet.services.service_tokens import create_token
from fleet.timeutil import utcnow


def service_token(*scopes: str, name: str | None = None) -> str:
    """A fresh service token holding `scopes`."""
    return create_token(name or f"token-{'-'.join(scopes)}", list(scopes), utcnow())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
