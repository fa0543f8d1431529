"""Committing a new record whose natural key must be unique."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from fleet.errors import AlreadyExists
from fleet.extensions import db


def commit_unique(clash: str) -> None:
    """Commit the session; a unique-key clash rolls back and is AlreadyExists(clash).

    The database's unique index decides, so two creators racing for one name
    cannot both win, whatever either read before.
    """
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyExists(clash) from None
