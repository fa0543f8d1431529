"""Sending one message to one channel: through Apprise, or as a signed webhook POST.

Only the delivery worker calls these (never a web request). Each returns an
error text, or None when the target accepted the message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from fleet.alert_models import AlertChannel, ChannelKind
from fleet.errors import InvalidInput
from fleet.services.alerts import crypto
from fleet.services.alerts.channels import ParsedUrl, apprise_asset, check_target, parse_url

SIGNATURE_HEADER = "X-Pulseboard-Signature"
TIMESTAMP_HEADER = "X-Pulseboard-Timestamp"
DELIVERY_HEADER = "X-Pulseboard-Notification"
MAX_ERROR = 500


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over `timestamp + "." + body`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def send(channel: AlertChannel, payload: dict[str, Any], notification_id: int) -> str | None:
    """Deliver `payload` to `channel`; the error text, or None once the target accepted it."""
    try:
        target = crypto.decrypt(channel.url_encrypted)
        if channel.kind == ChannelKind.WEBHOOK:
            secret = crypto.decrypt(channel.secret_encrypted or "")
            return _send_webhook(target, secret, payload, notification_id)
        # Checked again at each send: the allow-list or the name's address may have changed.
        parse_url(target)
        return _send_apprise(target, payload)
    except (InvalidInput, crypto.UndecryptableSecret) as refused:
        return f"refused: {getattr(refused, 'message', refused)}"[:MAX_ERROR]


def _send_apprise(url: str, payload: dict[str, Any]) -> str | None:
    import apprise

    notifier = apprise.Apprise(asset=apprise_asset())
    if not notifier.add(url):
        return "Apprise could not load the channel URL"
    result = notifier.notify(title=payload["title"], body=payload["message"])
    if result:
        return None
    # One target per channel: its own outcome and last log line say what went wrong.
    for target in result.results:
        if not target:
            lines = [str(entry) for entry in target.logs()]
            detail = lines[-1].split(" - ", 2)[-1] if lines else target.status.name
            return f"{target.name}: {detail}"[:MAX_ERROR]
    return f"Apprise: {result.status.name}"


def _send_webhook(
    target: str, secret: str, payload: dict[str, Any], notification_id: int
) -> str | None:
    parts = urlsplit(target)
    scheme = "webhooks" if parts.scheme == "https" else "webhook"
    check_target(ParsedUrl(ChannelKind.WEBHOOK, scheme, target, "", parts.hostname))
    body = json.dumps({**payload, "notification_id": notification_id}).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        target,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Pulseboard-Webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            # The same id on every attempt, so a receiver can drop a repeat.
            DELIVERY_HEADER: str(notification_id),
        },
    )
    timeout = current_app.config["ALERT_SEND_TIMEOUT_SECONDS"]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
        return None
    except urllib.error.HTTPError as error:
        return f"webhook answered HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"webhook unreachable: {reason}"[:MAX_ERROR]
