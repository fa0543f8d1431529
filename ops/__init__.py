"""Operations endpoints: /healthz, /readyz and /metrics, plus request metrics for every view."""

from flask import Blueprint

bp = Blueprint("ops", __name__)

from ops import views  # noqa: E402,F401  (routes register on import)
