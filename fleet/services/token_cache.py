"""Which device a token hash belongs to, remembered per process.

The cache is self-validating rather than flushed: every heartbeat's UPDATE also
requires `token_hash = :hash`, so a token rotated by another process simply
fails that condition, and the stale entry is dropped for that device alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import current_app
from sqlalchemy import select

from fleet.extensions import db
from fleet.models import Device

MAX_ENTRIES = 50_000


class TokenCache:
    """A bounded LRU of token hash -> device id; only valid tokens are remembered."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def device_id(self, token_hash: str) -> int | None:
        """The device holding this token hash, from memory or one indexed SELECT."""
        with self._lock:
            device_id = self._entries.get(token_hash)
            if device_id is not None:
                self._entries.move_to_end(token_hash)
                return device_id
        device_id = db.session.execute(
            select(Device.id).where(Device.token_hash == token_hash)
        ).scalar_one_or_none()
        if device_id is not None:
            self.remember(token_hash, device_id)
        return device_id

    def remember(self, token_hash: str, device_id: int) -> None:
        with self._lock:
            self._entries[token_hash] = device_id
            self._entries.move_to_end(token_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, token_hash: str) -> None:
        """Drop one token (rotated or refused); other devices' entries stay."""
        with self._lock:
            self._entries.pop(token_hash, None)


def token_cache() -> TokenCache:
    """This app's cache of token hash -> device id."""
    return current_app.extensions["pulseboard_tokens"]
