"""The entry point gunicorn and `flask` both find: `app = create_app()`."""

from fleet import create_app

app = create_app()
