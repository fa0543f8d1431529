"""Service tokens for the admin APIs: created by an admin, stored hashed, scoped, revocable.

A token is shown once when created; only its SHA-256 is stored, and a presented
token is found by that hash through the unique index. Device tokens carry a
different prefix and live in another table, so they never authenticate here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from fleet.errors import FleetError, InvalidInput
from fleet.extensions import db
from fleet.models import ServiceToken
from fleet.services.commit import commit_unique
from fleet.tokens import SERVICE_TOKEN_PREFIX, hash_token, new_token

# `admin`: channel management through the API (the URLs it takes carry credentials).
SCOPES = ("ping", "read", "operate", "admin")
NAME_MAX = 100
# `last_used_at` is for people ("used 3 min ago"), so it is written at most this
# often per token: authenticating stays a read, not a write per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class TokenNotFound(FleetError):
    code = "token_not_found"
    http_status = 404


@dataclass(frozen=True)
class ServiceIdentity:
    """Who presented a valid service token, and what it may do."""

    id: int
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """How this token is named in the event log."""
        return f"token:{self.name}"


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _clean_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput(
            f"scopes must be one or more of {', '.join(SCOPES)}", {"unknown": unknown}
        )
    return tuple(scope for scope in SCOPES if scope in scopes)


def create_token(name: str, scopes: list[str] | tuple[str, ...], now: datetime) -> str:
    """Create a named token with `scopes`; returns the token, which is never stored."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a token name has 1 to {NAME_MAX} characters", {"name": name})
    token = new_token(SERVICE_TOKEN_PREFIX)
    db.session.add(
        ServiceToken(
            name=name,
            token_hash=hash_token(token),
            scopes=" ".join(_clean_scopes(scopes)),
            created_at=now,
        )
    )
    commit_unique(f"a service token named {name!r} already exists")
    return token


def revoke_token(name: str, now: datetime) -> TokenInfo:
    """Revoke the named token at once; revoking it again keeps the first time."""
    db.session.execute(
        update(ServiceToken)
        .where(ServiceToken.name == name, ServiceToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    row = db.session.execute(select(ServiceToken).where(ServiceToken.name == name)).scalar()
    if row is None:
        raise TokenNotFound(f"no service token named {name!r}", {"name": name})
    return _info(row)


def list_tokens() -> list[TokenInfo]:
    """Every token, revoked ones included, by name."""
    rows = db.session.execute(select(ServiceToken).order_by(ServiceToken.name)).scalars()
    return [_info(row) for row in rows]


def _info(row: ServiceToken) -> TokenInfo:
    return TokenInfo(
        name=row.name,
        scopes=tuple(row.scopes.split()),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def authenticate(token: str, now: datetime) -> ServiceIdentity | None:
    """The identity behind a presented token, or None when it is unknown or revoked."""
    if not token.startswith(SERVICE_TOKEN_PREFIX):
        return None
    row = db.session.execute(
        select(
            ServiceToken.id,
            ServiceToken.name,
            ServiceToken.scopes,
            ServiceToken.last_used_at,
            ServiceToken.revoked_at,
        ).where(ServiceToken.token_hash == hash_token(token))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        db.session.rollback()
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        _touch(row.id, now)
    else:
        db.session.rollback()  # end the read transaction; nothing to write
    return ServiceIdentity(row.id, row.name, frozenset(row.scopes.split()))


def _touch(token_id: int, now: datetime) -> None:
    # Conditional, so concurrent requests with one token write it once per resolution.
    db.session.execute(
        update(ServiceToken)
        .where(
            ServiceToken.id == token_id,
            or_(
                ServiceToken.last_used_at.is_(None),
                ServiceToken.last_used_at <= now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
