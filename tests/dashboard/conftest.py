"""Dashboard fixtures: accounts per role and a logged-in client that carries the CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet.services import users
from fleet.timeutil import utcnow

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page the way a browser would."""
    html = client.get(path).get_data(as_text=True)
    match = TOKEN.search(html) or re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, html
    return match.group(1)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def make_user(app: Flask) -> Callable[..., str]:
    def make(role: str = "viewer", email: str | None = None) -> str:
        email = email or f"{role}@example.com"
        users.create_user(email, PASSWORD, role, utcnow())
        return email

    return make


@pytest.fixture
def login(client: FlaskClient, make_user: Callable[..., str]) -> Callable[[str], str]:
    """Log the client in with a fresh account of `role`; returns the session's CSRF token."""

    def login(role: str = "viewer") -> str:
        response = log_in(client, make_user(role))
        assert response.status_code == 302, response.get_data(as_text=True)
        return csrf_token(client, "/events")

    return login
