"""The rules of webhook subscriptions, without I/O: which URLs are taken, the secret, the signature, the lanes.

Signatures follow the Standard Webhooks spec (standardwebhooks.com): ``webhook-signature: v1,<base64>`` where
the HMAC-SHA256 is keyed by the secret's bytes (the base64 after ``whsec_``) over ``{id}.{timestamp}.{body}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from juwei.aggregate import Invalid

SECRET_PREFIX = "whsec_"
MAX_URL = 2000


def checked_url(url: str) -> str:
    """The URL as given when it is an http(s) URL with a host and no user or password in it."""
    if len(url) > MAX_URL or any(ch.isspace() for ch in url):
        raise Invalid("the URL must be at most 2000 characters, without spaces", code="url-refused")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise Invalid(f"the URL cannot be read: {exc}", code="url-refused") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid("the URL must start with http:// or https://", code="url-refused")
    if parts.username is not None or parts.password is not None:
        raise Invalid("the URL must not carry a user or password (user@host): we sign instead", code="url-refused")
    if not parts.hostname:
        raise Invalid("the URL names no host", code="url-refused")
    return url


def endpoint_of(url: str) -> str:
    """What listings show of a URL: scheme and host, never its path or query (they may carry a token)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def lane_of(building: str | None, subject: str) -> str:
    """One building's events go out in order, as they came (Kafka's key: the building, else the stream)."""
    return f"building:{building}" if building else f"stream:{subject}"


@dataclass(frozen=True)
class Queued:
    """A pending delivery as the planner sees it."""

    id: int
    lane: str
    next_attempt_at: datetime


def due_runs(pending: Iterable[Queued], now: datetime, per_lane: int) -> dict[str, list[int]]:
    """Per lane, the deliveries that may go now, in order: its oldest pending one, if due, and those after it.

    A lane whose oldest pending delivery waits for its retry holds every later one of the lane; other lanes go on.
    ``pending`` must come in id order.
    """
    runs: dict[str, list[int]] = {}
    held: set[str] = set()
    for item in pending:
        if item.lane in held:
            continue
        run = runs.get(item.lane)
        if run is None:
            if item.next_attempt_at > now:
                held.add(item.lane)
                continue
            run = runs[item.lane] = []
        if len(run) < per_lane:
            run.append(item.id)
    return runs


def within(asked: Sequence[str], allowed: frozenset[str] | None) -> list[str]:
    """Those of ``asked`` outside ``allowed`` (None: everything allowed)."""
    return [] if allowed is None else [name for name in asked if name not in allowed]
