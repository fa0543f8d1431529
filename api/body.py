"""Reading JSON request bodies: malformed JSON is a 400, a bad field a 422 naming it."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from fleet.errors import FleetError

Schema = TypeVar("Schema", bound=BaseModel)


class MalformedBody(FleetError):
    code = "malformed_json"
    http_status = 400


def read_json_object() -> dict[str, Any]:
    """The body as a JSON object; an empty body is an empty object."""
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedBody(f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return data


def parse_body(schema: type[Schema]) -> Schema:
    """The body validated against `schema` (a pydantic ValidationError becomes a 422)."""
    return schema.model_validate(read_json_object())
