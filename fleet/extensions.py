"""Extensions, created unbound and bound to the app in the factory."""

from collections.abc import Callable
from functools import partial, wraps
from typing import Any

from flask import Blueprint, Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase

from fleet.context import current_request
from fleet.sessions import holds_only_an_empty_new_session


class Base(DeclarativeBase):
    pass


# The engine in `db.engines[AUTOCOMMIT_BIND]` never opens a transaction.
AUTOCOMMIT_BIND = "autocommit"


Hook = Callable[..., Any]


def wrap_hooks_added_by(
    init_app: Callable[[], None],
    registries: list[dict[Any, list[Hook]]],
    wrap: Callable[[Hook], Hook],
) -> None:
    """Run an extension's `init_app`, then wrap each app-wide hook it added to `registries`."""
    hook_lists = [registry.setdefault(None, []) for registry in registries]
    known = {hook for hooks in hook_lists for hook in hooks}
    init_app()
    for hooks in hook_lists:
        hooks[:] = [hook if hook in known else wrap(hook) for hook in hooks]


class FleetLimiter(Limiter):
    """Flask-Limiter, told which endpoints check their limits themselves.

    Its before-request hook resolves routes, exemptions and meta limits on
    every request, whether the route has limits or not, and its after-request
    and teardown hooks build and clear a context for the request: together
    about a fifteenth of a heartbeat. The heartbeat checks its own limits with
    the `limits` library (api/ratelimits.py) and skips all three.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.self_limited_endpoints: set[str] = set()

    def init_app(self, app: Flask) -> None:
        hooks = [app.after_request_funcs, app.teardown_request_funcs]
        wrap_hooks_added_by(partial(super().init_app, app), hooks, self._unless_self_limited)

    def _unless_self_limited(self, hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """`hook`, passed over for self-limited endpoints (it gets the response or the error)."""

        @wraps(hook)
        def run(response_or_error: Any) -> Any:
            if current_request().endpoint in self.self_limited_endpoints:
                return response_or_error
            return hook(response_or_error)

        return run

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if in_middleware and current_request().endpoint in self.self_limited_endpoints:
            return
        super()._check_request_limit(callable_name, in_middleware)


class FleetLoginManager(LoginManager):
    """Flask-Login, minus its remember-me bookkeeping for requests without a session.

    After every request it looks in the session, and in the config, for a
    remember-me order, which a session that came without a cookie and holds
    nothing cannot contain. Its look also marked every answer `Vary: Cookie`,
    even those that never read the session (a heartbeat); together about a
    twentieth of a heartbeat's work. An answer whose own code read the session
    still says `Vary: Cookie`.
    """

    def _update_remember_cookie(self, response: Response) -> Response:
        if holds_only_an_empty_new_session(current_request()):
            return response
        return super()._update_remember_cookie(response)


class FleetCSRFProtect(CSRFProtect):
    """Flask-WTF's CSRF protection, passing over exempt blueprints first thing.

    Its hook reads the config and looks up the blueprint and the view through
    Flask's proxies before it finds a request exempt: about 2 % of a heartbeat,
    in the API blueprint it never checks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._exempt_blueprint_names: set[str] = set()
        super().__init__(*args, **kwargs)

    def init_app(self, app: Flask) -> None:
        hooks = [app.before_request_funcs]
        wrap_hooks_added_by(partial(super().init_app, app), hooks, self._unless_exempt_blueprint)

    def exempt(self, view: Any) -> Any:
        if isinstance(view, Blueprint):
            self._exempt_blueprint_names.add(view.name)
        return super().exempt(view)

    def _unless_exempt_blueprint(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        @wraps(hook)
        def run() -> Any:
            if current_request().blueprint in self._exempt_blueprint_names:
                return None
            return hook()

        return run


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
limiter = FleetLimiter(key_func=get_remote_address)
login_manager = FleetLoginManager()
csrf = FleetCSRFProtect()
