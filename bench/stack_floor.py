"""The chosen stack's own start-up, for bench.cli_startup: Flask with the four extensions
Pulseboard binds (Flask-SQLAlchemy, Flask-Limiter, Flask-Login, Flask-WTF) and no Pulseboard
code. No app built on this stack starts faster; what Pulseboard adds is measured above it."""

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
SQLAlchemy().init_app(app)
Limiter(key_func=get_remote_address).init_app(app)
LoginManager().init_app(app)
CSRFProtect().init_app(app)
