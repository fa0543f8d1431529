"""Flask's signed-cookie sessions, minus their set-up for requests that bring no cookie."""

from __future__ import annotations

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    """Devices and integrations never send a session cookie.

    Flask builds the cookie's signing serializer before looking for the cookie,
    and reads all seven cookie settings before finding there is nothing to
    save; for a heartbeat that was about a twentieth of its work. Without a cookie
    the session is empty either way, so it is made empty straight away, and an
    empty session nothing changed is not saved.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and (
            "HTTP_COOKIE" not in request.environ or self.get_cookie_name(app) not in request.cookies
        ):
            session = request.environ[_COOKIELESS_SESSION_KEY] = self.session_class()
            return session
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.modified:
            # What Flask does for such a session: only caches must know it was read.
            if session.accessed:
                _vary_on_cookie(response)
            return
        super().save_session(app, session, response)


_COOKIELESS_SESSION_KEY = "pulseboard.cookieless_session"


def holds_only_an_empty_new_session(request: Request) -> bool:
    """True when `request` brought no session cookie and nothing has been stored in its session.

    Looks without marking the session read: only what the request's own code
    read should make the answer vary on the cookie.
    """
    session = request.environ.get(_COOKIELESS_SESSION_KEY)
    return session is not None and not session and not session.modified


def _vary_on_cookie(response: Response) -> None:
    # `response.vary` parses the header into a set and writes it back: dearer
    # than the rest of saving an empty session, when there is nothing to merge.
    if "Vary" in response.headers:
        response.vary.add("Cookie")
    else:
        response.headers["Vary"] = "Cookie"
