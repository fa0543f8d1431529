"""What each JSON endpoint takes and answers, declared beside the view.

`describe` attaches an `Operation` to a view; the OpenAPI document is built from
these and the pydantic schemas that validate requests, so nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    summary: str
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    # "device", "enrollment", "service:<scope>" or None for public endpoints.
    auth: str | None = None
    errors: tuple[int, ...] = ()
    # With format=csv the endpoint answers text/csv whose first line names these columns.
    csv: tuple[str, ...] | None = None


def describe(summary: str, **fields: Any) -> Callable[[View], View]:
    """Attach an Operation to a view function."""
    operation = Operation(summary=summary, **fields)

    def attach(view: View) -> View:
        view.__operation__ = operation  # type: ignore[attr-defined]
        return view

    return attach


def operation_of(view: Callable[..., Any]) -> Operation | None:
    return getattr(view, "__operation__", None)
