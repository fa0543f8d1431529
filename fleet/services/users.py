"""Dashboard accounts: creation and password checks. Passwords are stored hashed only."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import cache

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from fleet.errors import InvalidInput
from fleet.extensions import db
from fleet.models import User
from fleet.services.commit import commit_unique

MIN_PASSWORD_LENGTH = 8


@cache
def _dummy_hash() -> str:
    """Checked against when the email is unknown, so a login takes as long either
    way and its timing does not reveal which accounts exist.

    Made on first use: a hash costs scrypt's time and memory, which a worker or
    a CLI run that never logs anyone in should not pay at start-up.
    """
    return generate_password_hash("pulseboard-no-such-user")


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


def create_user(email: str, password: str, role: str, now: datetime) -> User:
    """Create an active account; the password is stored as a salted hash."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise InvalidInput("an email address is required", {"field": "email"})
    if role not in ROLE_RANK:
        raise InvalidInput(f"role must be one of {', '.join(ROLE_RANK)}", {"field": "role"})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters", {"field": "password"}
        )
    user = User(
        email=email,
        password_hash=generate_password_hash(password),
        role=role,
        active=True,
        created_at=now,
    )
    db.session.add(user)
    commit_unique(f"a user with email {email!r} already exists")
    return user


def authenticate(email: str, password: str, now: datetime) -> User | None:
    """The active user with these credentials (their last login stamped), or None."""
    user = db.session.execute(
        # Stored emails are normalised (create_user), so the unique index serves the lookup.
        select(User).where(User.email == normalise_email(email))
    ).scalar_one_or_none()
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    db.session.execute(update(User).where(User.id == user.id).values(last_login_at=now))
    db.session.commit()
    return user


def get_active_user(user_id: int) -> User | None:
    """The account behind a session, or None once it is gone or deactivated."""
    user = db.session.get(User, user_id)
    return user if user is not None and user.active else None
