"""Sessions end server-side: a signed cookie kept from before a logout, a password change or
a deactivation opens nothing afterwards, whoever holds a copy of it.

Each browser here talks to an app with no app context pushed by the test, as a
real server is: a request's app context (and Flask-Login's user in `g`) would
otherwise be shared by every client of the test.
"""

from contextlib import contextmanager

import pytest

from fleet.services import enrolment, users
from fleet.timeutil import utcnow
from tests.dashboard.conftest import PASSWORD, csrf_token, log_in
from tests.helpers import device_row

COOKIE = "session"


@pytest.fixture
def site(make_app):
    return make_app()


@contextmanager
def server_side(app):
    """Work on the server's data between requests."""
    with app.app_context():
        yield


def make_user(app, role="operator"):
    with server_side(app):
        email = f"{role}@example.com"
        users.create_user(email, PASSWORD, role, utcnow())
    return email


def make_device(app, uid="kiosk-1"):
    with server_side(app):
        enrolment.register_device(uid, utcnow())


def reconnect_state(app, uid="kiosk-1"):
    with server_side(app):
        return device_row(uid).reconnect_state


def copy_of_session(app, client):
    """A second browser holding a copy of `client`'s session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def logged_in(app, email):
    client = app.test_client()
    assert log_in(client, email).status_code == 302
    return client


def log_out(client):
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302


def is_sent_to_login(response):
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_cookie_copied_before_logout_is_sent_to_the_login_page_after_it(site):
    client = logged_in(site, make_user(site))
    thief = copy_of_session(site, client)
    assert thief.get("/").status_code == 200  # the copy works while the session lives
    log_out(client)
    assert is_sent_to_login(thief.get("/"))
    assert is_sent_to_login(client.get("/"))


def test_a_csrf_protected_post_with_a_copied_cookie_is_refused_after_logout(site):
    make_device(site)
    client = logged_in(site, make_user(site))
    thief = copy_of_session(site, client)
    token = csrf_token(thief, "/")  # the copy carries a valid CSRF token too
    log_out(client)
    response = thief.post("/devices/kiosk-1/reconnect", headers={"X-CSRFToken": token})
    assert is_sent_to_login(response)
    assert reconnect_state(site) is None


def test_logging_out_ends_the_accounts_sessions_in_other_browsers(site):
    email = make_user(site, "viewer")
    laptop, phone = logged_in(site, email), logged_in(site, email)
    log_out(laptop)
    assert is_sent_to_login(phone.get("/events"))
    assert log_in(phone, email).status_code == 302  # and logging in again works
    assert phone.get("/events").status_code == 200
    assert is_sent_to_login(laptop.get("/events"))


@pytest.mark.parametrize(
    "end",
    [
        lambda email: users.set_password(email, "another long password"),
        lambda email: users.deactivate(email),
    ],
    ids=["password change", "deactivation"],
)
def test_a_password_change_or_deactivation_ends_open_sessions(site, end):
    client = logged_in(site, make_user(site))
    with server_side(site):
        end("operator@example.com")
    assert is_sent_to_login(client.get("/"))


def test_the_new_password_logs_in_and_the_old_one_no_longer_does(site):
    email = make_user(site, "viewer")
    with server_side(site):
        users.set_password(email, "another long password")
    client = site.test_client()
    assert log_in(client, email, PASSWORD).status_code == 401
    assert log_in(client, email, "another long password").status_code == 302


def test_a_new_role_applies_to_an_open_session_at_its_next_request(site):
    make_device(site)
    client = logged_in(site, make_user(site, "operator"))
    token = csrf_token(client, "/")
    with server_side(site):
        users.set_role("operator@example.com", "viewer")
    response = client.post("/devices/kiosk-1/reconnect", headers={"X-CSRFToken": token})
    assert response.status_code == 403
    assert client.get("/").status_code == 200  # still logged in, as a viewer


def test_a_session_cookie_naming_only_the_account_id_opens_nothing(site):
    """Cookies from before session versions (or forged from a leaked key) name no version."""
    make_user(site, "admin")
    client = site.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1"
        session["_fresh"] = True
    assert is_sent_to_login(client.get("/"))
