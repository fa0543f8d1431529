"""Views imported with their first request, as Flask documents ("Lazily Loading Views").

A route is declared with the dotted name of its view; the view's module (and
through it the schemas and services it uses) is imported when the route is
first called, or when something asks for the view itself (the OpenAPI document).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from flask import Blueprint
from werkzeug.utils import import_string


class LazyView:
    """Stands for the view at `import_name` ("module:function") until it is called."""

    def __init__(self, import_name: str) -> None:
        # The names of the view itself: Flask-Limiter finds a view's decorated limits
        # by its module, name and qualified name (a module-level function's is its name).
        self.__module__, self.__name__ = import_name.split(":")
        self.__qualname__ = self.__name__
        self.import_name = import_name

    @cached_property
    def view(self) -> Callable[..., Any]:
        return import_string(self.import_name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.view(*args, **kwargs)


def add_lazy_routes(bp: Blueprint, routes: Iterable[tuple[str, str, str]]) -> None:
    """Register (methods, path, "module:view") routes, each endpoint named after its view;
    `methods` is one method or several separated by spaces ("GET POST")."""
    for methods, path, import_name in routes:
        view = LazyView(import_name)
        bp.add_url_rule(path, endpoint=view.__name__, view_func=view, methods=methods.split())


def add_lazy_template_helpers(bp: Blueprint, helpers: Iterable[tuple[str, str, str]]) -> None:
    """Register ("global" or "filter", name, "module:function") template helpers for the app;
    Jinja calls them like any function, which imports the module the first time."""
    for kind, name, import_name in helpers:
        if kind == "global":
            bp.add_app_template_global(LazyView(import_name), name)
        elif kind == "filter":
            bp.add_app_template_filter(LazyView(import_name), name)
        else:
            raise ValueError(f"a template helper is a global or a filter, not {kind!r}")


def resolved(view: Callable[..., Any]) -> Callable[..., Any]:
    """The real view behind `view` (itself when it is not lazy)."""
    return view.view if isinstance(view, LazyView) else view
