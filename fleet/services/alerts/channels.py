"""Channels: where notifications go. Admins add them; only the delivery worker sends.

A channel is an Apprise URL or a Pulseboard webhook (`webhook://` for http,
`webhooks://` for https; the body is signed, see `senders`). URLs carry
credentials and are typed by people, so they are checked against an allow-list
of schemes, refused when they aim at private addresses (unless
ALERT_ALLOW_PRIVATE_TARGETS), never given options that read files, stored
encrypted and shown masked.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog
from flask import current_app
from sqlalchemy import delete, func, select

from fleet.alert_models import AlertChannel, AlertLogKind, ChannelKind
from fleet.errors import InvalidInput, NotFound
from fleet.extensions import db
from fleet.services.alerts import crypto
from fleet.services.alerts.audit import write_log
from fleet.services.commit import commit_unique

# Apprise loads its plugins when imported: only the code that parses or sends
# a channel URL imports it, so other processes and commands start without it.
if TYPE_CHECKING:
    import apprise

log = structlog.get_logger("pulseboard.alerts")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_URL = 2000
FAILING_AFTER = 3
WEBHOOK_SCHEMES = {"webhook": "http", "webhooks": "https"}
# Schemes whose host the admin chooses (the others talk to their vendor's fixed hosts).
HOST_CHOSEN = {"mailto", "mailtos", "json", "jsons", "ntfy", "ntfys", "webhook", "webhooks"}
# Apprise options that make a plugin read a file from this server's disk.
FILE_OPTIONS = {"pgppub", "pgpprv", "attach", "attachment", "config", "pgp", "wkd"}


@dataclass(frozen=True)
class ParsedUrl:
    kind: str
    scheme: str
    target: str  # what is sent to: the Apprise URL, or the webhook's http(s) URL
    masked: str
    host: str | None
    secret: str | None = None


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    kind: str
    masked_url: str
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    created_at: datetime

    @property
    def failing(self) -> bool:
        return self.consecutive_failures >= FAILING_AFTER


@dataclass(frozen=True)
class AddedChannel:
    name: str
    masked_url: str
    # A webhook's signing secret when Pulseboard made it: shown once, then only stored encrypted.
    generated_secret: str | None


def apprise_asset() -> apprise.AppriseAsset:
    """Apprise settings for every channel: nothing persisted to disk, bounded time."""
    import apprise

    return apprise.AppriseAsset(
        storage_mode="memory",
        service_timeout=current_app.config["ALERT_SEND_TIMEOUT_SECONDS"] * 3,
        allow_templates=False,
    )


def parse_url(url: str) -> ParsedUrl:
    """Check a channel URL typed by an admin; InvalidInput says what is wrong."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL:
        raise InvalidInput(f"a channel URL has 1 to {MAX_URL} characters", {"field": "url"})
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    allowed = current_app.config["ALERT_ALLOWED_SCHEMES"]
    if scheme not in allowed:
        raise InvalidInput(
            f"the URL scheme {scheme or '(none)'!r} is not allowed; allowed: {', '.join(allowed)}",
            {"field": "url", "allowed_schemes": list(allowed)},
        )
    options = {key.lower() for key, _ in parse_qsl(urlsplit(url).query)}
    if options & FILE_OPTIONS:
        raise InvalidInput(
            f"channel URLs may not use the options {', '.join(sorted(options & FILE_OPTIONS))}",
            {"field": "url"},
        )
    parsed = _parse_webhook(url, scheme) if scheme in WEBHOOK_SCHEMES else _parse_apprise(url)
    check_target(parsed)
    return parsed


def _parse_webhook(url: str, scheme: str) -> ParsedUrl:
    parts = urlsplit(url)
    if not parts.hostname:
        raise InvalidInput("a webhook URL names a host", {"field": "url"})
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret = next((value for key, value in query if key == "secret"), None)
    kept = urlencode([(key, value) for key, value in query if key != "secret"])
    target = urlunsplit((WEBHOOK_SCHEMES[scheme], parts.netloc, parts.path or "/", kept, ""))
    host_port = parts.hostname + (f":{parts.port}" if parts.port else "")
    masked = f"{scheme}://{host_port}/{'…' if parts.path.strip('/') or kept else ''}"
    return ParsedUrl(ChannelKind.WEBHOOK, scheme, target, masked, parts.hostname, secret)


def _parse_apprise(url: str) -> ParsedUrl:
    import apprise

    plugin = apprise.Apprise.instantiate(url, asset=apprise_asset(), suppress_exceptions=True)
    if plugin is None:
        raise InvalidInput("Apprise cannot use this URL (check its form)", {"field": "url"})
    scheme = url.split("://", 1)[0].lower()
    return ParsedUrl(
        ChannelKind.APPRISE, scheme, url, plugin.url(privacy=True), _chosen_host(plugin, scheme)
    )


def _chosen_host(plugin: object, scheme: str) -> str | None:
    if scheme not in HOST_CHOSEN:
        return None
    if scheme.startswith("ntfy") and getattr(plugin, "mode", None) == "cloud":
        return None
    return getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)


def check_target(parsed: ParsedUrl) -> None:
    """Refuse a host that resolves to a private, loopback or link-local address.

    Checked when the channel is saved and again before each send (a name can be
    re-pointed after it was checked). A name that does not resolve now is left
    to the send, which will fail and say so.
    """
    if parsed.host is None or current_app.config["ALERT_ALLOW_PRIVATE_TARGETS"]:
        return
    for address in _addresses(parsed.host):
        if not address.is_global:
            raise InvalidInput(
                f"{parsed.host} is a private or loopback address; "
                "set ALERT_ALLOW_PRIVATE_TARGETS=true to allow it",
                {"field": "url", "host": parsed.host},
            )


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME.match(name):
        raise InvalidInput(
            "a channel name is 1 to 100 letters, digits, '.', '_' or '-'", {"field": "name"}
        )
    return name


def add_channel(name: str, url: str, actor: str | None, now: datetime) -> AddedChannel:
    """Save a channel; its URL is stored encrypted and shown masked from now on."""
    name = _check_name(name)
    parsed = parse_url(url)
    generated = None
    secret = parsed.secret
    if parsed.kind == ChannelKind.WEBHOOK and not secret:
        secret = generated = secrets.token_urlsafe(32)
    db.session.add(
        AlertChannel(
            name=name,
            kind=parsed.kind,
            scheme=parsed.scheme,
            url_encrypted=crypto.encrypt(parsed.target),
            masked_url=parsed.masked,
            secret_encrypted=crypto.encrypt(secret) if secret else None,
            created_at=now,
            created_by=actor,
            consecutive_failures=0,
        )
    )
    write_log(AlertLogKind.CHANNEL_ADDED, f"channel {name} added ({parsed.masked})", actor, now)
    commit_unique(f"a channel named {name!r} already exists")
    log.info("channel_added", channel=name, url=parsed.masked, actor=actor)
    return AddedChannel(name, parsed.masked, generated)


def get_channel(name: str) -> AlertChannel:
    """The channel called `name`, or NotFound."""
    channel = db.session.execute(
        select(AlertChannel).where(AlertChannel.name == name)
    ).scalar_one_or_none()
    if channel is None:
        raise NotFound(f"no channel named {name!r}", {"channel": name})
    return channel


def channels_named(names: list[str] | tuple[str, ...]) -> list[AlertChannel]:
    """The channels with these names, in that order; NotFound names the first missing one."""
    return [get_channel(name) for name in names]


def channel_names() -> dict[int, str]:
    """Every channel's name by id."""
    return dict(db.session.execute(select(AlertChannel.id, AlertChannel.name)).all())


def list_channels() -> list[ChannelInfo]:
    """Every channel, masked, with its delivery health."""
    rows = db.session.execute(select(AlertChannel).order_by(AlertChannel.name)).scalars()
    return [info_of(row) for row in rows]


def info_of(row: AlertChannel) -> ChannelInfo:
    return ChannelInfo(
        name=row.name,
        kind=row.kind,
        masked_url=row.masked_url,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        last_success_at=row.last_success_at,
        last_failure_at=row.last_failure_at,
        created_at=row.created_at,
    )


def failing_channels() -> list[ChannelInfo]:
    """Channels whose last FAILING_AFTER deliveries or more all failed."""
    rows = db.session.execute(
        select(AlertChannel)
        .where(AlertChannel.consecutive_failures >= FAILING_AFTER)
        .order_by(AlertChannel.name)
    ).scalars()
    return [info_of(row) for row in rows]


def count_failing() -> int:
    return db.session.execute(
        select(func.count())
        .select_from(AlertChannel)
        .where(AlertChannel.consecutive_failures >= FAILING_AFTER)
    ).scalar_one()


def remove_channel(name: str, actor: str | None, now: datetime) -> None:
    """Delete a channel, its routes and its unsent notifications."""
    channel = get_channel(name)
    db.session.execute(delete(AlertChannel).where(AlertChannel.id == channel.id))
    write_log(AlertLogKind.CHANNEL_REMOVED, f"channel {name} removed", actor, now)
    db.session.commit()
    log.info("channel_removed", channel=name, actor=actor)


def rotate_keys() -> int:
    """Re-encrypt every channel's secrets with the current key; returns how many."""
    rows = list(db.session.execute(select(AlertChannel)).scalars())
    for row in rows:
        row.url_encrypted = crypto.rotate(row.url_encrypted)
        if row.secret_encrypted:
            row.secret_encrypted = crypto.rotate(row.secret_encrypted)
    db.session.commit()
    return len(rows)
