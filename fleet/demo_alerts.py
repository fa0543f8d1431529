"""`make run`'s demo alerts: a local inbox for the messages, with no outside service.

The demo's channel is a Pulseboard webhook to a receiver that `make run` starts
on a free loopback port; each message it gets (signature checked) is appended
to `instance/alerts-inbox.log` as readable text. Rules: a site outage, and a
device disconnected.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHANNEL = "demo-inbox"
RULES = (("demo-site-outage", "site_outage"), ("demo-disconnected", "disconnected"))
# The simulator's staged power cut: a small site, 45 s into the run, for 90 s.
SITE_OUTAGE = "Dublin Docklands@45+90"


class DemoInbox:
    """A webhook receiver on 127.0.0.1 that writes each message it gets to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.secret = secrets.token_urlsafe(24)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"webhook://127.0.0.1:{self.server.server_port}/inbox?secret={self.secret}"

    def start(self) -> DemoInbox:
        threading.Thread(target=self.server.serve_forever, name="demo-inbox", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write(self, body: bytes, signed: bool) -> None:
        message = json.loads(body)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        check = "signature ok" if signed else "BAD SIGNATURE"
        with open(self.path, "a", encoding="utf-8") as inbox:
            inbox.write(f"--- {stamp} ({check})\n{message['title']}\n{message['message']}\n\n")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                timestamp = self.headers.get("X-Pulseboard-Timestamp", "")
                expected = hmac.new(
                    inbox.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
                ).hexdigest()
                given = self.headers.get("X-Pulseboard-Signature", "").removeprefix("sha256=")
                inbox.write(body, hmac.compare_digest(expected, given))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def install(inbox_url: str) -> None:
    """Point the demo channel at this run's inbox and make sure the demo rules exist."""
    from fleet.errors import NotFound
    from fleet.services.alerts import channels, ruleset
    from fleet.services.alerts.ruleset import RuleSpec
    from fleet.timeutil import utcnow

    now = utcnow()
    with contextlib.suppress(NotFound):
        channels.remove_channel(CHANNEL, "make run", now)
    channels.add_channel(CHANNEL, inbox_url, "make run", now)
    existing = {rule.name for rule in ruleset.load_rules()}
    for name, kind in RULES:
        if name not in existing:
            ruleset.add_rule(RuleSpec(name=name, kind=kind, channels=(CHANNEL,)), "make run", now)
