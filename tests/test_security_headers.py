"""Security headers: on every answer of the main app, HSTS in production only, no-store on
dashboard pages. (The device API, a lean app of its own for heartbeats, sets none.)"""

import pytest

from fleet.security_headers import CONTENT_SECURITY_POLICY
from fleet.services import users
from fleet.timeutil import utcnow
from tests.dashboard.conftest import PASSWORD, log_in

COMMON = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def assert_common_headers(response):
    assert {name: response.headers.get(name) for name in COMMON} == COMMON


@pytest.mark.parametrize(
    "path",
    ["/login", "/", "/api/openapi.json", "/api/nowhere", "/static/pulseboard.css", "/healthz"],
)
def test_every_answer_carries_the_security_headers(client, path):
    assert_common_headers(client.get(path))


def test_the_policy_allows_scripts_and_styles_from_this_site_only_and_no_framing():
    directives = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_dashboard_pages_are_never_stored_by_a_cache(client):
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    users.create_user("viewer@example.com", PASSWORD, "viewer", utcnow())
    assert log_in(client, "viewer@example.com").status_code == 302
    for path in ("/", "/events", "/poll?since=2026-01-01T00:00:00%2B00:00"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_static_files_stay_cacheable(client):
    assert "no-store" not in client.get("/static/htmx.min.js").headers.get("Cache-Control", "")


def test_hsts_is_sent_in_production_only(client, make_app):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    production = make_app(PULSEBOARD_ENV="production")
    response = production.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
