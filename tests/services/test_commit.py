"""Committing a record whose natural key must be unique: the database's index decides."""

import pytest
from sqlalchemy import func, select

from fleet.errors import AlreadyExists
from fleet.extensions import db
from fleet.models import Device
from fleet.services.commit import commit_unique
from fleet.timeutil import utcnow


def a_device(uid):
    now = utcnow()
    return Device(
        uid=uid,
        token_hash=f"hash-of-{uid}",
        status="disconnected",
        status_reason="test",
        status_source="system",
        status_changed_at=now,
        revision=0,
        changed_at=now,
        created_at=now,
    )


def test_it_commits_a_new_record(app):
    db.session.add(a_device("kiosk-1"))
    commit_unique("clash")
    assert db.session.execute(select(func.count()).select_from(Device)).scalar_one() == 1


def test_a_clash_is_already_exists_and_leaves_the_session_usable(app):
    db.session.add(a_device("kiosk-1"))
    commit_unique("clash")
    db.session.add(a_device("kiosk-1"))
    with pytest.raises(AlreadyExists, match="kiosk-1 is taken"):
        commit_unique("kiosk-1 is taken")
    assert db.session.execute(select(func.count()).select_from(Device)).scalar_one() == 1
