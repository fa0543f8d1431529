"""One error shape for every JSON endpoint: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed

from fleet.context import current_request
from fleet.errors import FleetError
from fleet.extensions import db

log = structlog.get_logger("pulseboard.api")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> tuple[Response, int]:
    """A JSON error in the house shape."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return jsonify(body), status


def validation_error_response(error: ValidationError) -> tuple[Response, int]:
    """422 naming each bad field and what is wrong with it."""
    return error_response(422, **invalid_fields(error))


def invalid_fields(error: ValidationError) -> dict[str, Any]:
    """The error shape's code, message and details for a failed validation."""
    fields = {
        ".".join(str(part) for part in item["loc"]) or "body": item["msg"]
        for item in error.errors()
    }
    names = ", ".join(fields)
    return {
        "code": "invalid_field",
        "message": f"invalid field(s): {names}",
        "details": {"fields": fields},
    }


def _is_api_request(path: str) -> bool:
    return path.startswith("/api/") or path == "/api"


def refuse_nul_characters() -> None:
    """400 for a NUL anywhere in the path, query or form: PostgreSQL text cannot hold one."""
    current = current_request()
    path, query = current.path, current.query_string
    if "\x00" in path or b"%00" in query or b"\x00" in query:
        raise BadRequest("NUL characters are not allowed in URLs")
    # API bodies are JSON whatever their Content-Type says (read_json_object checks
    # them); parsing one as a form here would consume it.
    is_form = current.method == "POST" and not _is_api_request(path)
    is_form = is_form and current.mimetype in FORM_TYPES
    if is_form and any("\x00" in value for value in current.form.values()):
        raise BadRequest("NUL characters are not allowed in forms")


FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def register_error_handlers(app: Flask) -> None:
    """JSON errors under /api; everything else keeps Flask's pages."""

    @app.errorhandler(FleetError)
    def handle_fleet_error(error: FleetError):
        db.session.rollback()
        response, status = error_response(
            error.http_status, error.code, error.message, error.details
        )
        if "retry_after_seconds" in error.details:
            response.headers["Retry-After"] = str(error.details["retry_after_seconds"])
        return response, status

    @app.errorhandler(ValidationError)
    def handle_validation_error(error: ValidationError):
        return validation_error_response(error)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        if not _is_api_request(request.path):
            return error
        status = error.code or 500
        code = HTTP_CODES.get(status, "http_error")
        response, status = error_response(status, code, error.description or code)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response, status

    @app.errorhandler(OperationalError)
    def handle_database_down(error: DBAPIError):
        db.session.rollback()
        log.error("database_unavailable", error=str(error.orig))
        if not _is_api_request(request.path):
            return "Database unavailable", 503
        return error_response(503, "database_unavailable", "the database is unavailable; retry")

    @app.errorhandler(PoolTimeout)
    def handle_pool_exhausted(error: PoolTimeout):
        # Every pooled connection stayed busy for the pool's whole timeout: load, not a fault.
        db.session.rollback()
        log.error("database_pool_exhausted", error=str(error))
        if not _is_api_request(request.path):
            return "Database busy", 503, {"Retry-After": "1"}
        response, status = error_response(
            503, "database_busy", "every database connection is in use; retry"
        )
        response.headers["Retry-After"] = "1"
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        db.session.rollback()
        log.exception("unhandled_error", path=request.path)
        if not _is_api_request(request.path):
            return "Internal server error", 500
        return error_response(500, "internal_error", "an unexpected error occurred")
