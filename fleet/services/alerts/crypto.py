"""Channel URLs at rest: Fernet, with a key derived from SECRET_KEY by HKDF.

Rotation: set the new SECRET_KEY, list the old one in ALERT_PREVIOUS_SECRET_KEYS,
run `flask channels rotate-key`, then drop the old key (docs/alerts.md).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from flask import current_app

# cryptography is imported where a channel URL is read or written: a `flask`
# command or a heartbeat worker that never touches one starts without it.
if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

# Versioned, so a future change of derivation cannot be confused with this one.
_INFO = b"pulseboard alert channel urls v1"


class UndecryptableSecret(RuntimeError):
    """A stored channel secret no configured key can read (SECRET_KEY changed without rotation)."""


def _fernet(secret_key: str) -> Fernet:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    from cryptography.fernet import MultiFernet

    config = current_app.config
    secrets = [config["SECRET_KEY"], *config["ALERT_PREVIOUS_SECRET_KEYS"]]
    return MultiFernet([_fernet(secret) for secret in secrets])


def encrypt(plain: str) -> str:
    """The text encrypted with the current key."""
    return _keys().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """The text back, read with the current or any previous key."""
    from cryptography.fernet import InvalidToken

    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            "a channel secret cannot be decrypted: SECRET_KEY changed without "
            "ALERT_PREVIOUS_SECRET_KEYS (see docs/alerts.md, key rotation)"
        ) from None


def rotate(token: str) -> str:
    """The text re-encrypted with the current key."""
    return _keys().rotate(token.encode()).decode()
