"""Security headers on every answer: what a browser may run, frame, send on and keep.

Registered with Flask's documented `after_request` hook. The policy allows
scripts and styles from this site only: htmx and pulseboard.js are vendored
files, no template holds an inline script or style, and htmx is configured
(templates/base.html) neither to inject its indicator style nor to evaluate
code, since the policy grants no 'unsafe-inline' and no 'unsafe-eval'.
"""

from __future__ import annotations

from flask import Flask, Response

from fleet.context import current_request

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        # The modern form of X-Frame-Options, which older browsers still need.
        "frame-ancestors 'none'",
    )
)

HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # Dashboard URLs carry searches and device uids: other sites get none of them.
    ("Referrer-Policy", "same-origin"),
)

# A year, and only this host: the operator's other subdomains may not all speak HTTPS.
HSTS = ("Strict-Transport-Security", "max-age=31536000")

# Blueprints whose pages show fleet data to a logged-in person (the login page
# holds the session's CSRF token): no cache, shared or private, may keep them.
NO_STORE_BLUEPRINTS = frozenset({"dashboard"})


def init_app(app: Flask) -> None:
    """Add the headers to every response `app` sends; HSTS only in production."""
    headers = HEADERS + ((HSTS,) if app.config["PULSEBOARD_ENV"] == "production" else ())

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers:
            # A view that sets its own value (a stricter policy, say) keeps it.
            response.headers.setdefault(name, value)
        if current_request().blueprint in NO_STORE_BLUEPRINTS:
            response.headers["Cache-Control"] = "no-store"
        return response
