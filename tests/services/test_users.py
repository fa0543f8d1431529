"""Dashboard accounts: created with a hashed password, checked case-insensitively by email."""

import pytest

from fleet.accounts import session_key
from fleet.errors import AlreadyExists, InvalidInput, UserNotFound
from fleet.services import users
from fleet.timeutil import utcnow

T0 = utcnow().replace(microsecond=0)


def test_it_creates_an_account_with_only_a_hash_of_the_password(app):
    user = users.create_user(" Ops@Example.com ", "long-password", "operator", T0)
    assert (user.email, user.role, user.active) == ("ops@example.com", "operator", True)
    assert "long-password" not in user.password_hash


@pytest.mark.parametrize(
    ("email", "password", "role", "field"),
    [
        ("no-at-sign", "long-password", "viewer", "email"),
        ("a@example.com", "short", "viewer", "password"),
        ("a@example.com", "long-password", "superuser", "role"),
    ],
)
def test_it_names_what_is_wrong_with_a_new_account(app, email, password, role, field):
    with pytest.raises(InvalidInput) as raised:
        users.create_user(email, password, role, T0)
    assert raised.value.details == {"field": field}


def test_an_email_is_one_account_whatever_its_case(app):
    users.create_user("a@example.com", "long-password", "viewer", T0)
    with pytest.raises(AlreadyExists):
        users.create_user("A@EXAMPLE.COM", "other-password", "viewer", T0)


def test_it_authenticates_the_right_password_and_stamps_the_login(app):
    users.create_user("a@example.com", "long-password", "viewer", T0)
    user = users.authenticate("A@example.com", "long-password", T0)
    assert user is not None and user.last_login_at == T0


@pytest.mark.parametrize(
    ("email", "password"), [("a@example.com", "wrong-password"), ("b@example.com", "x")]
)
def test_a_wrong_password_or_unknown_email_is_none(app, email, password):
    users.create_user("a@example.com", "long-password", "viewer", T0)
    assert users.authenticate(email, password, T0) is None


def test_an_inactive_account_neither_logs_in_nor_keeps_its_session(app):
    from fleet.extensions import db

    user = users.create_user("a@example.com", "long-password", "viewer", T0)
    user.active = False
    db.session.commit()
    assert users.authenticate("a@example.com", "long-password", T0) is None
    assert users.user_for_session(session_key(user)) is None


def test_a_session_key_names_its_account_until_its_sessions_end(app):
    user = users.create_user("a@example.com", "long-password", "viewer", T0)
    key = session_key(user)
    assert users.user_for_session(key).email == "a@example.com"
    users.end_sessions(user.id)
    assert users.user_for_session(key) is None
    assert users.user_for_session(session_key(user)).email == "a@example.com"


@pytest.mark.parametrize("key", ["1", "1:", ":0", "x:0", "1:x", "1:0:0", ""])
def test_a_malformed_session_key_names_no_account(app, key):
    users.create_user("a@example.com", "long-password", "viewer", T0)
    assert users.user_for_session(key) is None


def test_a_new_password_or_a_deactivation_ends_the_sessions_but_a_new_role_does_not(app):
    user = users.create_user("a@example.com", "long-password", "viewer", T0)
    key = session_key(user)
    assert users.set_role("A@example.com", "admin").role == "admin"
    assert users.user_for_session(key) is not None
    users.set_password("a@example.com", "another-long-password")
    assert users.user_for_session(key) is None
    key = session_key(user)
    users.deactivate("a@example.com")
    assert users.user_for_session(key) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda: users.set_password("nobody@example.com", "long-password"),
        lambda: users.deactivate("nobody@example.com"),
        lambda: users.set_role("nobody@example.com", "viewer"),
    ],
)
def test_changing_an_unknown_account_says_so(app, change):
    with pytest.raises(UserNotFound, match=r"nobody@example\.com"):
        change()
