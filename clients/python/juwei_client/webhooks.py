"""Signed webhooks checked as the Standard Webhooks specification says (https://www.standardwebhooks.com).

The sender signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under the secret (base64, written
``whsec_<base64>``) and sends ``webhook-signature: v1,<base64 signature>``, several separated by spaces while a
secret is being rotated. The receiver takes the raw body as it arrived (before any JSON parsing), refuses a
timestamp more than 5 minutes from its clock (a replay), and compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_SECONDS = 5 * 60
_PREFIX = "whsec_"


class WebhookVerificationError(ValueError):
    """The request is not a webhook signed with this secret, or not a fresh one: answer it 400, act on nothing."""


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    text = secret.removeprefix(_PREFIX)
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is base64 (after the whsec_ prefix)") from None


def sign(secret: str | bytes, webhook_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for that id, timestamp (Unix seconds) and body."""
    content = body.encode() if isinstance(body, str) else body
    signed = f"{webhook_id}.{timestamp}.".encode() + content
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


class WebhookVerifier:
    """Checks webhooks signed with ``secret`` (``whsec_…``, or the raw key bytes); ``tolerance``: seconds."""

    def __init__(self, secret: str | bytes, *, tolerance: int = TOLERANCE_SECONDS) -> None:
        self._key = _key(secret)
        self.tolerance = tolerance

    def verify(self, body: bytes | str, headers: Mapping[str, str], *, now: float | None = None) -> None:
        """Returns when ``body`` with ``headers`` (names in any case) is signed with the secret and fresh;
        else raises ``WebhookVerificationError`` saying why."""
        lowered = {k.lower(): v for k, v in headers.items()}
        webhook_id = lowered.get("webhook-id")
        stamp = lowered.get("webhook-timestamp")
        signatures = lowered.get("webhook-signature")
        if not webhook_id or not stamp or not signatures:
            raise WebhookVerificationError("webhook-id, webhook-timestamp and webhook-signature are all required")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise WebhookVerificationError("webhook-timestamp is not a whole number of seconds") from None
        clock = time.time() if now is None else now
        if timestamp < clock - self.tolerance:
            raise WebhookVerificationError("the webhook is too old (timestamp beyond the tolerance)")
        if timestamp > clock + self.tolerance:
            raise WebhookVerificationError("the webhook is from the future (timestamp beyond the tolerance)")
        expected = sign(self._key, webhook_id, timestamp, body).encode()
        found = False
        for candidate in signatures.split(" "):
            version, _, _ = candidate.partition(",")
            # Every candidate compared, the match remembered: the time taken says nothing about which one matched.
            found |= version == "v1" and hmac.compare_digest(candidate.encode(), expected)
        if not found:
            raise WebhookVerificationError("no signature matches (altered body, or another secret)")
