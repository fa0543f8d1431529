"""Extensions, created unbound and bound to the main app in the factory."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase

# Re-exported: code that picks an engine finds the bind name beside `db`.
from fleet.config import AUTOCOMMIT_BIND as AUTOCOMMIT_BIND


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()
csrf = CSRFProtect()
