"""Structured logging through structlog: readable console lines, or JSON lines.

Every request gets an id (the caller's `X-Request-ID` when it is sane, else a
fresh one), bound into the log context and echoed in the response header, and
one access line. A redaction processor runs last before rendering, so no
token, password or enrolment key reaches a log whichever code logged it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import MutableMapping
from functools import partial
from typing import Any

import structlog
from flask import Flask, Request, Response

from fleet.context import current_request

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_ENVIRON_KEY = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")
REDACTED = "[redacted]"

# Keys whose values are secrets whatever they contain, compared lower-cased with - as _.
SECRET_KEYS = frozenset(
    {
        "authorization",
        "token",
        "password",
        "secret",
        "secret_key",
        "enrollment_key",
        "x_enrollment_key",
        "api_key",
        "cookie",
        "set_cookie",
        "metrics_token",
    }
)
# Secrets that may hide inside free text (an exception message, a URL), with their masks.
_SECRET_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[^\s,;\"']+"), r"\1" + REDACTED),
    (re.compile(r"\bpb[ds]_[A-Za-z0-9_-]{16,}"), REDACTED),  # device and service tokens
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1" + REDACTED + r"\2"),  # URL password
)
_ID_KEY = "pulseboard.request_id"
_STARTED_KEY = "pulseboard.request_started"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

access_log = structlog.get_logger("pulseboard.access")
_access_logger = logging.getLogger("pulseboard.access")


def _is_secret_key(key: str) -> bool:
    normalised = key.lower().replace("-", "_")
    return normalised in SECRET_KEYS or normalised.endswith(("_token", "_password", "_secret"))


def scrub_text(text: str) -> str:
    """The text with bearer tokens, Pulseboard tokens and URL passwords masked."""
    for pattern, mask in _SECRET_PATTERNS:
        text = pattern.sub(mask, text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_secret_key(str(key)) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor: secret keys are replaced, secrets in text are masked."""
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTED if _is_secret_key(key) else _redact(value)
    return event_dict


def configure_logging(log_format: str, level: str) -> None:
    """Route stdlib and structlog records through one renderer chosen by LOG_FORMAT."""
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Level first: a line below LOG_LEVEL costs no processing at all (a large
        # sweep logs thousands of transitions).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Exceptions are rendered to text first so that their messages are scrubbed too.
                structlog.processors.format_exc_info,
                redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces each of its plugins at INFO on every migration command.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # The development server (`flask run`, `make run`) writes its own line per request
    # at INFO, beside the app's access line (init_request_logging): two lines per
    # heartbeat, 17 MB in half an hour of the demo. The app's line is the one kept:
    # it has the request id and sends a heartbeat that went well to DEBUG. The
    # server's warnings and errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a plain token of sane length, else a fresh one."""
    if header and _SANE_REQUEST_ID.match(header):
        return header
    # 128 random bits in hex, as uuid4().hex but without building a UUID, which is
    # most of uuid4's cost on every request (docs/benchmarks.md).
    return os.urandom(16).hex()


def init_request_logging(app: Flask, quiet_endpoints: frozenset[str] = frozenset()) -> None:
    """Give every request an id in the log context and the response, and one access line.

    Successful requests to `quiet_endpoints` are logged at DEBUG: a fleet's
    heartbeats arrive by the thousand a second, and only the refused ones say
    anything an operator needs to read.
    """
    # First of all before-request hooks: the rate limiter's runs earlier than any
    # registered later, and a 429 it raises must still carry an id and be logged.
    app.before_request_funcs.setdefault(None, []).insert(0, _bind_request_id)
    app.after_request(partial(_log_access, quiet_endpoints))
    app.teardown_request(_unbind_request_id)


def _bind_request_id() -> None:
    # Kept in the WSGI environ, not on `g`: an app context (and its `g`) can
    # outlive a request, as it does under the test client.
    environ = current_request().environ
    environ[_STARTED_KEY] = time.perf_counter()
    request_id = request_id_from(environ.get(_REQUEST_ID_ENVIRON_KEY))
    environ[_ID_KEY] = request_id
    # The context starts empty: the teardown hook clears it after every request.
    structlog.contextvars.bind_contextvars(request_id=request_id)


def _log_access(quiet_endpoints: frozenset[str], response: Response) -> Response:
    current = current_request()
    environ = current.environ
    if _ID_KEY not in environ:  # the request failed before any before-request hook ran
        _bind_request_id()
    response.headers[REQUEST_ID_HEADER] = environ[_ID_KEY]
    quiet = response.status_code < 400 and current.endpoint in quiet_endpoints
    if quiet and not _access_logger.isEnabledFor(logging.DEBUG):
        return response
    log = access_log.debug if quiet else access_log.info
    log(
        "request",
        method=current.method,
        path=current.path,
        status=response.status_code,
        duration_ms=round(elapsed_seconds(current) * 1000, 2),
        remote_addr=current.remote_addr,
    )
    return response


def elapsed_seconds(current: Request) -> float:
    """Seconds since `current`, the request being handled, started."""
    return time.perf_counter() - current.environ.get(_STARTED_KEY, time.perf_counter())


def _unbind_request_id(_error: BaseException | None) -> None:
    structlog.contextvars.clear_contextvars()
