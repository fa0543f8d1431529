"""Dashboard accounts: creation, password checks and sessions. Passwords are stored hashed only.

A session cookie is signed, not stored, so it cannot be recalled; instead it
names the account's session version (`fleet.accounts.session_key`), and bumping the version
(`end_sessions`, and every password change or deactivation) makes every cookie
opened before it, copies included, name no account.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from fleet.accounts import ROLE_RANK, normalise_email
from fleet.errors import InvalidInput, UserNotFound
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


def create_user(email: str, password: str, role: str, now: datetime) -> User:
    """Create an active account; the password is stored as a salted hash."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise InvalidInput("an email address is required", {"field": "email"})
    _check_role(role)
    _check_password(password)
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


def _check_role(role: str) -> None:
    if role not in ROLE_RANK:
        raise InvalidInput(f"role must be one of {', '.join(ROLE_RANK)}", {"field": "role"})


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters", {"field": "password"}
        )


def user_for_session(key: str) -> User | None:
    """The active account a session key names, or None once its sessions were ended.

    A key without a version (written before versions existed) names no account:
    its holder logs in once more.
    """
    user_id, _, version = key.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _change(email: str, *, end_sessions: bool = True, **values: Any) -> User:
    """Update the account with `email` in one UPDATE; with `end_sessions`, its sessions end."""
    if end_sessions:
        values["session_version"] = User.session_version + 1
    found = db.session.execute(
        update(User).where(User.email == normalise_email(email)).values(**values).returning(User.id)
    ).scalar_one_or_none()
    if found is None:
        db.session.rollback()
        raise UserNotFound(f"no user with email {email!r}")
    db.session.commit()
    return db.session.get(User, found, populate_existing=True)


def end_sessions(user_id: int) -> None:
    """End every session of the account, on every browser (logout)."""
    # One UPDATE, so two logouts at once both count and neither is lost.
    db.session.execute(
        update(User).where(User.id == user_id).values(session_version=User.session_version + 1)
    )
    db.session.commit()


def set_password(email: str, password: str) -> User:
    """Replace the account's password; every session it had ends."""
    _check_password(password)
    return _change(email, password_hash=generate_password_hash(password))


def deactivate(email: str) -> User:
    """Refuse the account's logins from now on; every session it had ends."""
    return _change(email, active=False)


def set_role(email: str, role: str) -> User:
    """Give the account `role`; open sessions keep going under it from their next request."""
    _check_role(role)
    # Sessions need not end: each request loads the role afresh (user_for_session).
    return _change(email, end_sessions=False, role=role)


def list_users() -> list[User]:
    """Every account, by email."""
    return list(db.session.execute(select(User).order_by(User.email)).scalars())
