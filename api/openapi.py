"""The OpenAPI 3.1 document, built from the app's routes, their `describe` operations
and the pydantic schemas that validate requests, so nothing is written twice.

Any view carrying an Operation is included, whichever blueprint it is on; a
view without one is not part of the documented API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from api.docs_page import operations_for_page
from api.errors import HTTP_CODES
from api.schemas import ErrorResponse
from api.spec import Operation, operation_of
from device_api import device_app_of
from fleet.lazy_views import resolved

API_VERSION = "0.1.0"
REF = "#/components/schemas/{model}"
_CACHE_KEY = "pulseboard.openapi"
_CONVERTER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_INTEGER_CONVERTERS = {"int"}

SECURITY_SCHEMES = {
    "deviceToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The device token returned once by `POST /api/devices/register`.",
    },
    "serviceToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A service token from `flask tokens create NAME --scope ...`; "
        "each operation names the scope it needs (ping, read or operate).",
    },
    "enrollmentKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Enrollment-Key",
        "description": "The fleet enrolment key (ENROLLMENT_KEY); "
        "the body field `enrollment_key` is accepted instead.",
    },
}
# Error codes that a client meets more often than the generic one for the status.
ERROR_EXAMPLE_CODES = {400: "malformed_json", 422: "invalid_field", 401: "unauthorized"}
REQUEST_ID_HEADER = {
    "description": "The request's id (the caller's X-Request-ID when sane), also in the logs.",
    "schema": {"type": "string"},
}


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    endpoint: str
    rule: Rule
    operation: Operation


def described_routes(app: Flask) -> Iterator[Route]:
    """Every (path, method) whose view carries an Operation, in a stable order.

    The routes of the device app that `app` dispatches to are included.
    """
    apps = (app, device_app_of(app))
    rules = [(rule, each) for each in apps for rule in each.url_map.iter_rules()]
    for rule, owner in sorted(rules, key=lambda pair: (pair[0].rule, pair[0].endpoint)):
        operation = operation_of(resolved(owner.view_functions[rule.endpoint]))
        if operation is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = _CONVERTER.sub(lambda match: "{" + match["name"] + "}", rule.rule)
            yield Route(path, method.lower(), rule.endpoint, rule, operation)


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every described route of `app`."""
    routes = list(described_routes(app))
    refs, definitions = models_json_schema(_models(routes), ref_template=REF)
    components = definitions.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route, refs, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pulseboard API",
            "version": API_VERSION,
            "description": "Device heartbeats and enrolment, and the admin API for "
            "integrations. Every error has the shape "
            '`{"error": {"code", "message", "details"}}`.',
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": SECURITY_SCHEMES,
            "headers": {"RequestId": REQUEST_ID_HEADER},
        },
    }


def _models(routes: list[Route]) -> list[tuple[type[BaseModel], Any]]:
    models: dict[tuple[type[BaseModel], str], None] = {(ErrorResponse, "serialization"): None}
    for route in routes:
        operation = route.operation
        for model, mode in (
            (operation.request, "validation"),
            (operation.query, "validation"),
            (operation.response, "serialization"),
        ):
            if model is not None:
                models[(model, mode)] = None
    return list(models)


def _operation(
    route: Route, refs: dict[Any, dict[str, Any]], components: dict[str, Any]
) -> dict[str, Any]:
    operation = route.operation
    spec: dict[str, Any] = {
        "operationId": route.endpoint.replace(".", "_") + "_" + route.method,
        "summary": operation.summary,
        "tags": [_tag(route.path)],
        "security": _security(operation.auth),
        "responses": _responses(operation, refs),
    }
    parameters = _path_parameters(route.rule) + _query_parameters(operation, refs, components)
    if parameters:
        spec["parameters"] = parameters
    if operation.request is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(operation.request, "validation")]}},
        }
    return spec


def _tag(path: str) -> str:
    parts = [part for part in path.split("/") if part and not part.startswith("{")]
    if parts[:1] == ["api"]:
        parts = parts[1:]
    if parts[:1] == ["admin"] and len(parts) > 1:
        return "admin " + parts[1]
    return parts[0] if parts else "default"


def _security(auth: str | None) -> list[dict[str, list[str]]]:
    if auth is None:
        return []
    if auth == "device":
        return [{"deviceToken": []}]
    if auth == "enrollment":
        return [{"enrollmentKey": []}]
    kind, _, scope = auth.partition(":")
    if kind == "service":
        return [{"serviceToken": [scope] if scope else []}]
    raise ValueError(f"unknown auth {auth!r} in an endpoint description")


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    return [
        {
            "name": match["name"],
            "in": "path",
            "required": True,
            "schema": {
                "type": "integer" if match["converter"] in _INTEGER_CONVERTERS else "string"
            },
        }
        for match in _CONVERTER.finditer(rule.rule)
    ]


def _query_parameters(
    operation: Operation, refs: dict[Any, dict[str, Any]], components: dict[str, Any]
) -> list[dict[str, Any]]:
    if operation.query is None:
        return []
    name = refs[(operation.query, "validation")]["$ref"].rsplit("/", 1)[-1]
    schema = components[name]
    required = set(schema.get("required", ()))
    return [
        {
            "name": field,
            "in": "query",
            "required": field in required,
            "schema": {key: value for key, value in prop.items() if key != "title"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for field, prop in schema.get("properties", {}).items()
    ]


def _responses(operation: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    headers = {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}}
    success: dict[str, Any] = {
        "description": HTTPStatus(operation.status).phrase,
        "headers": headers,
    }
    if operation.response is not None:
        schema = refs[(operation.response, "serialization")]
        success["content"] = {"application/json": {"schema": schema}}
    if operation.csv is not None:
        success.setdefault("content", {})["text/csv"] = {
            "schema": {"type": "string", "description": "First line: " + ",".join(operation.csv)},
            "example": ",".join(operation.csv) + "\n",
        }
    responses = {str(operation.status): success}
    # Any endpoint answers 400 to a NUL character in its URL (api.errors.refuse_nul_characters).
    for status in sorted({400, *operation.errors}):
        responses[str(status)] = _error_response(status, refs, headers)
    return responses


def _error_response(
    status: int, refs: dict[Any, dict[str, Any]], headers: dict[str, Any]
) -> dict[str, Any]:
    code = ERROR_EXAMPLE_CODES.get(status) or HTTP_CODES.get(status, "error")
    example = {"error": {"code": code, "message": HTTPStatus(status).phrase, "details": {}}}
    response: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "headers": dict(headers),
        "content": {
            "application/json": {
                "schema": refs[(ErrorResponse, "serialization")],
                "example": example,
            }
        },
    }
    if status == 429:
        response["headers"]["Retry-After"] = {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer"},
        }
    return response


def openapi_document() -> dict[str, Any]:
    """The document for the current app, built once per app."""
    cache = current_app.extensions
    if _CACHE_KEY not in cache:
        cache[_CACHE_KEY] = build_document(current_app)
    return cache[_CACHE_KEY]


def openapi_json():
    return jsonify(openapi_document())


def docs_page():
    """The document as a readable page, rendered here: no script, no CDN."""
    document = openapi_document()
    # Rendered without the context processors: the page is public and has no
    # business loading the signed-in user (Flask-Login's processor would).
    template = current_app.jinja_env.get_template("api/docs.html")
    return template.render(document=document, operations=operations_for_page(document))
