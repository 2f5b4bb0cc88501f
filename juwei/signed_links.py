"""Signed, expiring links: what a person opens from a chat group without an API key.

A link names what it opens (its *subject*, e.g. a photo's compound, record and id), when it stops working
(``expires``, Unix seconds) and ``signature``: HMAC-SHA256 over the subject and the expiry, under a secret the
signing and the serving services share (a ``Settings.shared_key``; for photos ``contracts.testing.LINK_SECRET``).
Changing any of the three breaks the signature.
Pure: no clock, no I/O — the caller passes ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import StrEnum
from urllib.parse import urlencode

SIGNATURE_LENGTH = 43  # url-safe base64 of 32 bytes, without padding


class LinkState(StrEnum):
    GOOD = "good"
    UNSIGNED = "unsigned"  # no signature or no expiry: a link typed by hand, or cut short
    FORGED = "forged"  # signed by no one who has the secret, or altered after signing
    EXPIRED = "expired"  # genuine, but its time is over


def signature(secret: str, subject: str, expires: int) -> str:
    """The link's signature: HMAC-SHA256 over ``subject`` and ``expires``, url-safe base64 without padding."""
    # A newline cannot occur in a subject or in a number: "a\n1" and "a\n12" never sign the same bytes as each other.
    message = f"{subject}\n{expires}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signed_query(secret: str, subject: str, now: float, lifetime_seconds: int) -> str:
    """``expires=…&signature=…`` for a link to ``subject`` good for ``lifetime_seconds`` from ``now``."""
    expires = int(now) + lifetime_seconds
    return urlencode({"expires": expires, "signature": signature(secret, subject, expires)})


def check(secret: str, subject: str, expires: str | None, signed: str | None, now: float) -> LinkState:
    """What a link is worth: the signature first (an altered expiry is a forgery), then the time."""
    if not expires or not signed:
        return LinkState.UNSIGNED
    # One spelling per expiry (no leading zeros, no sign): a link has exactly one valid form.
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12 and expires == str(int(expires))):
        return LinkState.FORGED
    if len(signed) != SIGNATURE_LENGTH:
        return LinkState.FORGED
    # compare_digest: the time taken does not tell how much of a guessed signature was right.
    if not hmac.compare_digest(signature(secret, subject, int(expires)).encode(), signed.encode("utf-8", "replace")):
        return LinkState.FORGED
    return LinkState.GOOD if now < int(expires) else LinkState.EXPIRED
