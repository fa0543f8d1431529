import pytest
import time_machine

from fleet.services import users
from fleet.timeutil import utcnow
from tests.dashboard.conftest import PASSWORD, csrf_token, log_in
from tests.helpers import device_row

PAGES = ["/", "/poll?since=2026-01-01T00:00:00%2B00:00", "/devices/kiosk-1", "/events"]


def test_it_sends_every_page_to_the_login_page_without_a_session(client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=")


def test_it_asks_an_htmx_poll_without_a_session_to_go_to_the_login_page(client):
    response = client.get(PAGES[1], headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login"


def test_an_expired_sessions_poll_comes_back_to_the_filtered_page_after_login(client, make_user):
    email = make_user("viewer")
    page = "http://localhost/?status=disconnected&site=Berlin+HQ"
    headers = {"HX-Request": "true", "HX-Current-URL": page}
    response = client.get(PAGES[1], headers=headers)
    assert response.status_code == 401
    login_page = response.headers["HX-Redirect"]
    assert login_page == "/login?next=/?status%3Ddisconnected%26site%3DBerlin%2BHQ"
    assert 'value="/?status=disconnected&amp;site=Berlin+HQ"' in client.get(login_page).text
    token = csrf_token(client)
    form = {"email": email, "password": PASSWORD, "csrf_token": token}
    form["next"] = "/?status=disconnected&site=Berlin+HQ"
    assert client.post("/login", data=form).headers["Location"] == form["next"]


@pytest.mark.parametrize(
    "current", ["https://evil.example/?status=disconnected", "//evil.example/", "javascript:x", ""]
)
def test_a_poll_from_a_page_elsewhere_goes_to_the_plain_login_page(client, current):
    response = client.get(PAGES[1], headers={"HX-Request": "true", "HX-Current-URL": current})
    assert response.headers["HX-Redirect"] == "/login"


def test_it_logs_in_stamps_the_login_and_logs_out(client, make_user, app):
    email = make_user("viewer")
    response = log_in(client, email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert users.authenticate(email, PASSWORD, utcnow()).last_login_at is not None
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert client.get("/").status_code == 302


def test_it_refuses_a_wrong_password_and_an_inactive_account(client, make_user, app):
    email = make_user("viewer")
    response = log_in(client, email, "wrong password")
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert users.authenticate(email, "wrong password", utcnow()) is None
    user = users.authenticate(email, PASSWORD, utcnow())
    user.active = False
    from fleet.extensions import db

    db.session.commit()
    assert log_in(client, email).status_code == 401


def log_in_from(client, address, email, password=PASSWORD):
    """Log in as a browser at `address` would."""
    token = csrf_token(client)
    form = {"email": email, "password": password, "csrf_token": token}
    return client.post("/login", data=form, environ_base={"REMOTE_ADDR": address})


def test_it_slows_down_failed_logins_to_one_account_from_one_address(client, make_user):
    email = make_user("viewer")
    codes = [log_in_from(client, "192.0.2.1", email, "wrong").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    page = log_in_from(client, "192.0.2.1", email).get_data(as_text=True)
    assert "Too many failed login attempts from here. Try again in" in page


def test_the_wait_ends_and_the_right_password_then_logs_in(app, client, make_user):
    if app.config["REDIS_URL"]:
        pytest.skip("Redis expires its keys by the real clock; the memory storage follows ours")
    email = make_user("viewer")
    with time_machine.travel(utcnow(), tick=False) as clock:
        for _ in range(3):
            log_in_from(client, "192.0.2.1", email, "wrong")
        assert log_in_from(client, "192.0.2.1", email).status_code == 429
        clock.shift(11)
        assert log_in_from(client, "192.0.2.1", email).status_code == 302


def test_failures_from_other_addresses_never_refuse_the_right_password(client, make_user):
    email = make_user("viewer")
    for n in range(50):
        assert log_in_from(client, f"198.51.100.{n}", email, "wrong").status_code == 401
    assert log_in_from(client, "203.0.113.9", email).status_code == 302


def test_an_address_guessing_across_accounts_is_held_back(client, make_user):
    codes = [
        log_in_from(client, "192.0.2.7", f"user{n}@example.com", "wrong").status_code
        for n in range(21)
    ]
    assert codes == [401] * 20 + [429]


def test_a_failed_login_keeps_the_typed_email(client, make_user):
    email = make_user("viewer")
    page = log_in_from(client, "192.0.2.1", email, "wrong").get_data(as_text=True)
    assert f'value="{email}"' in page


def test_it_never_redirects_off_site_after_login(client, make_user):
    email = make_user("viewer")
    token = csrf_token(client)
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        response = client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert response.headers["Location"] == "/"
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/events"},
    )
    assert response.headers["Location"] == "/events"


def test_it_refuses_a_post_without_the_csrf_token(client, login, make_device):
    login("operator")
    make_device("kiosk-1")
    response = client.post("/devices/kiosk-1/reconnect")
    assert response.status_code == 400
    assert device_row("kiosk-1").reconnect_state is None
    assert (
        client.post("/login", data={"email": "x@example.com", "password": "x"}).status_code == 400
    )


def test_it_sets_a_httponly_samesite_session_cookie(client, make_user):
    response = log_in(client, make_user("viewer"))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_it_marks_the_session_cookie_secure_in_production(make_app):
    app = make_app(PULSEBOARD_ENV="production")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
