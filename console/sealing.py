"""The API keys the console holds for people, sealed at rest (AES-GCM under the console's secret)."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeySeal:
    """Seals a key bound to the row it belongs to (``context``): a sealed key copied to another row won't open."""

    def __init__(self, secret: str) -> None:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)) if secret else b""
        if len(raw) != 32:  # a passphrase rather than a generated key: stretch it to 32 bytes
            raw = hashlib.sha256(secret.encode()).digest()
        self._aead = AESGCM(raw)

    def seal(self, key: str, context: str) -> str:
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, key.encode(), context.encode())).decode()

    def open(self, sealed: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
