"""Sessions and roles: login, logout, the one login guard and the one role decorator.

The guard registers when the app is built, which every `flask` command does; the
accounts service (and through it the models) is imported by the three functions
that read or write an account, with the first request that needs one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, redirect, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError

from dashboard import bp
from fleet.accounts import normalise_email, role_allows, session_key
from fleet.errors import FleetError
from fleet.extensions import limiter, login_manager
from fleet.timeutil import utcnow

View = TypeVar("View", bound=Callable[..., Any])
PUBLIC_ENDPOINTS = {"dashboard.login", "static"}
# Failed logins only are counted, and only per address: per account at one
# address the wait grows with the failures (seconds, then minutes, then the
# hour); an address guessing across accounts is held back too. Failures from
# other addresses never refuse the right password, so nobody can lock an
# account out by knowing its email.
LOGIN_LIMITS_PER_ACCOUNT_AT_ADDRESS = "3 per 10 seconds;10 per 5 minutes;30 per hour"
LOGIN_LIMITS_PER_ADDRESS = "20 per minute;100 per hour"


@dataclass
class SessionUser(UserMixin):
    """The logged-in account as the views see it (no password hash in sight)."""

    id: int
    email: str
    role: str
    session_version: int

    @classmethod
    def of(cls, user: Any) -> SessionUser:
        return cls(user.id, user.email, user.role, user.session_version)

    def get_id(self) -> str:
        # Flask-Login's documented "alternative tokens": the session stores this
        # key, not the bare id, so ending the account's sessions (a new version)
        # makes every cookie already handed out name no one.
        return session_key(self)

    def can(self, role: str) -> bool:
        """True when this user's role includes `role`."""
        return role_allows(self.role, role)


login_manager.login_view = "dashboard.login"
login_manager.login_message = None


@login_manager.user_loader
def _load_user(key: str) -> SessionUser | None:
    from fleet.services import users

    user = users.user_for_session(key)
    return None if user is None else SessionUser.of(user)


@bp.before_request
def _require_login() -> Any:
    """Every dashboard page but the login page needs a session."""
    if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
        return None
    if request.headers.get("HX-Request"):
        # An htmx poll cannot follow a redirect to a page; ask it to reload instead,
        # coming back afterwards to the page it polled for, not to the poll's URL.
        back = _page_of(request.headers.get("HX-Current-URL"))
        return "", 401, {"HX-Redirect": url_for("dashboard.login", next=back)}
    return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))


def _page_of(current_url: str | None) -> str | None:
    """The path and query of the page htmx says it is on, when that page is on this site."""
    parts = urlsplit(current_url or "")
    if not parts.path.startswith("/") or parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def requires_role(role: str) -> Callable[[View], View]:
    """Refuse the view (403) to users whose role does not include `role`."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not current_user.can(role):
                abort(403)
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def _login_account_at_address_key() -> str:
    email = normalise_email(request.form.get("email", ""))
    return f"login:{email}:{get_remote_address()}"


def _login_failed(response: Any) -> bool:
    return response.status_code == 401


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would make our login a phishing aid."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/"):
        return url_for("dashboard.fleet")
    return target


@limiter.limit(LOGIN_LIMITS_PER_ADDRESS, methods=["POST"], deduct_when=_login_failed)
@limiter.limit(
    LOGIN_LIMITS_PER_ACCOUNT_AT_ADDRESS,
    methods=["POST"],
    key_func=_login_account_at_address_key,
    deduct_when=_login_failed,
)
def login():
    from fleet.services import users

    if request.method == "GET":
        return render_template("dashboard/login.html", next=request.args.get("next"))
    user = users.authenticate(
        request.form.get("email", ""), request.form.get("password", ""), utcnow()
    )
    if user is None:
        return _login_page("Wrong email or password.", 401)
    login_user(SessionUser.of(user))
    return redirect(_safe_next(request.form.get("next")))


def logout():
    """End the session here and every copy of it (and the account's other sessions)."""
    from fleet.services import users

    users.end_sessions(current_user.id)
    logout_user()
    return redirect(url_for("dashboard.login"))


def _login_page(error: str, status: int) -> tuple[str, int]:
    """The login page again, with the error and the email that was typed."""
    page = render_template(
        "dashboard/login.html",
        error=error,
        email=request.form.get("email", ""),
        next=request.form.get("next"),
    )
    return page, status


@bp.errorhandler(RateLimitExceeded)
def _too_many(error: RateLimitExceeded):
    breached = limiter.current_limit
    wait = max(1, math.ceil(breached.reset_at - time.time())) if breached else 60
    message = f"Too many failed login attempts from here. Try again in {wait} s."
    return _login_page(message, 429)


@bp.errorhandler(FleetError)
def _fleet_error(error: FleetError):
    return render_template("dashboard/error.html", message=error.message), error.http_status


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError):
    message = "Your session form expired. Reload the page and try again."
    return render_template("dashboard/error.html", message=message), 400
