"""Reading JSON request bodies: malformed JSON is a 400, a bad field a 422 naming it."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import Request
from pydantic import BaseModel

from fleet.context import current_request
from fleet.errors import FleetError

Schema = TypeVar("Schema", bound=BaseModel)


class MalformedBody(FleetError):
    code = "malformed_json"
    http_status = 400


def read_json_object(request: Request | None = None) -> dict[str, Any]:
    """The body of `request` (else the current one) as a JSON object; empty is an empty object."""
    raw = (request or current_request()).get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        return {}
    try:
        data = _DECODER.decode(raw.decode("utf-8-sig"))
    except RecursionError:
        raise MalformedBody("the body nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedBody(f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    # Strict JSON can carry NUL only as the escape \u0000: without one, nothing to walk.
    if b"\\u0000" in raw and _has_nul(data):
        raise MalformedBody("the body contains a NUL character")
    return data


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are accepted by Python's parser but are not JSON, and
    # PostgreSQL refuses them in a json column.
    raise ValueError(f"{name} is not a JSON value")


# One decoder, as json.loads keeps for itself: given options, json.loads builds a
# new decoder for every call. Bodies are UTF-8, as RFC 8259 requires (which
# lets a leading byte order mark be ignored: some firmware writes one).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _has_nul(value: Any) -> bool:
    """True if any string (key or value) holds NUL, which PostgreSQL text cannot store.

    A loop, not recursion: a small body can nest deeper than Python's stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def nests_deeper_than(value: Any, limit: int) -> bool:
    """True if `value` holds objects or arrays more than `limit` levels deep (`{}` is one).

    A loop, not recursion, for the same reason as `_has_nul`; it stops at the
    first container past the limit.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def parse_body(schema: type[Schema], request: Request | None = None) -> Schema:
    """The body validated against `schema` (a pydantic ValidationError becomes a 422)."""
    return schema.model_validate(read_json_object(request))
