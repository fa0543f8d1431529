"""The request and the app being served, looked up once.

Every attribute read through Flask's `request` and `current_app` proxies finds
the object again in the context (about eight thousand instructions a read,
measured with bench/instructions.py); a heartbeat's hooks and view read them
some twenty times. Code on that path takes the object once and reads from it.
"""

from __future__ import annotations

from flask import Flask, Request, current_app, request


def current_request() -> Request:
    """The request being handled (needs a request context)."""
    return request._get_current_object()  # type: ignore[attr-defined]


def current_application() -> Flask:
    """The app being served (needs an app context)."""
    return current_app._get_current_object()  # type: ignore[attr-defined]
