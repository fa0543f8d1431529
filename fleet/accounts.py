"""Account rules that need no database: the roles and what each may do, the email an
account is known by and the key its session cookie names it by.

The login guard uses them on every page and loads when the app is built, which
every `flask` command does; keeping them apart from the models lets it load without them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


# Each role may do everything the roles before it may.
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def role_allows(role: str, needed: str) -> bool:
    """True when `role` is at least `needed` (viewer < operator < admin)."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[Role(needed)]


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def session_key(user: Any) -> str:
    """What a session cookie stores for `user`: its id and its current session version."""
    return f"{user.id}:{user.session_version}"
