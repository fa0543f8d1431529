"""Real receivers for the alerts' tests and benchmark: an SMTP server, an HTTP webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.servers import free_port


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        """The plain-text part of the mail."""
        for part in self.message.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode()
        return ""


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.inbox.mails.append(
            Mail(envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"


class SmtpInbox:
    """An aiosmtpd server on a free loopback port; `url(...)` is the Apprise mailto URL to it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self.controller: Controller | None = None

    def start(self) -> SmtpInbox:
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, to: str = "ops@example.com") -> str:
        # mailto:// (not mailtos://) with no mode is plain SMTP, no TLS.
        return f"mailto://127.0.0.1:{self.port}?from=alerts@pulseboard.test&to={to}"

    def wait_for(self, count: int, timeout: float = 10) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.mails


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # wall clock when it arrived

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A threaded HTTP server that records every POST; `hold` delays its answers."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    hold_seconds: float = 0.0
    answer: int = 200
    arrived: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.received.append(Received(self.path, dict(self.headers), body))
                receiver.arrived.set()
                time.sleep(receiver.hold_seconds)
                self.send_response(receiver.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def url(self, scheme: str = "webhook", path: str = "/hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


def signature_is_valid(secret: str, received: Received, max_age_seconds: int = 300) -> bool:
    """What a receiver does: recompute the HMAC over timestamp + "." + body, check the age."""
    timestamp = received.headers["X-Pulseboard-Timestamp"]
    if abs(time.time() - int(timestamp)) > max_age_seconds:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256)
    given = received.headers["X-Pulseboard-Signature"].removeprefix("sha256=")
    return hmac.compare_digest(expected.hexdigest(), given)
