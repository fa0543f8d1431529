"""Turn the OpenAPI document into plain rows for the server-rendered docs page."""

from __future__ import annotations

import json
from typing import Any

CONSTRAINTS = {
    "minimum": ">= {}",
    "maximum": "<= {}",
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "pattern": "matches {}",
    "maxItems": "at most {} items",
}
AUTH_LABELS = {
    "deviceToken": "device token (Authorization: Bearer ...)",
    "enrollmentKey": "enrolment key (X-Enrollment-Key header)",
    "serviceToken": "service token (Authorization: Bearer ...)",
}


def operations_for_page(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per operation: its auth, parameters, body fields, responses and example."""
    schemas = document["components"]["schemas"]
    return [
        {
            "method": method.upper(),
            "path": path,
            "id": spec["operationId"],
            "summary": spec["summary"],
            "tag": spec["tags"][0],
            "auth": _auth(spec["security"]),
            "parameters": [_parameter(item) for item in spec.get("parameters", [])],
            "body": _body(spec, schemas),
            "responses": _responses(spec["responses"]),
        }
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    ]


def _auth(security: list[dict[str, list[str]]]) -> str:
    if not security:
        return "none"
    labels = []
    for requirement in security:
        for scheme, scopes in requirement.items():
            label = AUTH_LABELS.get(scheme, scheme)
            labels.append(f"{label}, scope {', '.join(scopes)}" if scopes else label)
    return " or ".join(labels)


def _parameter(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": item["name"],
        "where": item["in"],
        "required": item.get("required", False),
        "type": type_name(item.get("schema", {})),
        "notes": "; ".join(filter(None, [item.get("description"), _notes(item.get("schema", {}))])),
    }


def _body(spec: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    body = spec.get("requestBody")
    if body is None:
        return None
    schema = resolve(body["content"]["application/json"]["schema"], schemas)
    required = set(schema.get("required", ()))
    fields = [
        {
            "name": name,
            "required": name in required,
            "type": type_name(prop),
            "notes": "; ".join(filter(None, [prop.get("description"), _notes(prop)])),
        }
        for name, prop in schema.get("properties", {}).items()
    ]
    examples = schema.get("examples") or []
    example = json.dumps(examples[0], indent=2) if examples else None
    return {"fields": fields, "example": example}


def _responses(responses: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for status, response in responses.items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        rows.append(
            {
                "status": status,
                "description": response["description"],
                "schema": schema.get("$ref", "").rsplit("/", 1)[-1],
            }
        )
    return rows


def resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` points to, or the schema itself."""
    ref = schema.get("$ref")
    return schemas[ref.rsplit("/", 1)[-1]] if ref else schema


def type_name(schema: dict[str, Any]) -> str:
    """A short name for a JSON schema's type, e.g. "integer or null"."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(type_name(option) for option in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_name(schema.get('items', {}))}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return kind if isinstance(kind, str) else " or ".join(kind)


def _notes(schema: dict[str, Any]) -> str:
    parts = []
    for option in [schema, *schema.get("anyOf", [])]:
        for key, template in CONSTRAINTS.items():
            if key in option:
                parts.append(template.format(option[key]))
        if "enum" in option:
            parts.append("one of " + ", ".join(map(str, option["enum"])))
    if schema.get("default") is not None:
        parts.append(f"default {schema['default']}")
    return "; ".join(parts)
