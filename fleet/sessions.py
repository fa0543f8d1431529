"""Flask's signed-cookie sessions, minus their set-up for requests that bring no cookie."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    """Devices and integrations never send a session cookie.

    Flask builds the cookie's signing serializer before looking for the cookie;
    for a heartbeat that was about a twentieth of its time. Without a cookie
    the session is empty either way, so it is made empty straight away.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)
