"""How a dispatcher paces itself, and what it knows of a channel and of a claimed delivery."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from juwei.events import utcnow
from juwei.service import Runtime
from services.notify.domain import (
    PLATFORM_LIMITS,
    RateLimit,
)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class DispatchPolicy:
    """How the dispatcher paces itself; every figure can be set from the environment (see the README)."""

    tick: float = 0.25
    lease_seconds: float = 30.0  # longer than one send (http_timeout) plus its two commits
    http_timeout: float = 10.0
    retry_base: float = 2.0
    retry_cap: float = 900.0
    max_attempts: int = 8
    per_tick: int = 25  # sends per channel per tick: keeps a tick short when a Feishu bot paces at 5/s
    workers: int = 4  # channels served side by side
    rounds_together: int = 8  # rounds of idempotent channels run back to back before due channels are looked up again
    # How long a platform wants us to stop after it said "too fast" (DingTalk blocks a bot for 10 minutes).
    rate_limit_pause: dict[str, float] = field(
        default_factory=lambda: {"wecom": 60.0, "dingtalk": 600.0, "feishu": 60.0, "email": 60.0, "webhook": 30.0}
    )
    limits: dict[str, RateLimit] = field(default_factory=lambda: dict(PLATFORM_LIMITS))
    public_url: str | None = None  # where residents reach this service, for board links in digests

    @classmethod
    def from_env(cls) -> DispatchPolicy:
        base = cls()
        pause = os.environ.get("JUWEI_NOTIFY_RATE_LIMIT_PAUSE")
        return replace(
            base,
            tick=_env_float("JUWEI_NOTIFY_DISPATCH_SECONDS", base.tick),
            lease_seconds=_env_float("JUWEI_NOTIFY_LEASE_SECONDS", base.lease_seconds),
            http_timeout=_env_float("JUWEI_NOTIFY_HTTP_TIMEOUT", base.http_timeout),
            retry_base=_env_float("JUWEI_NOTIFY_RETRY_BASE", base.retry_base),
            retry_cap=_env_float("JUWEI_NOTIFY_RETRY_CAP", base.retry_cap),
            max_attempts=int(_env_float("JUWEI_NOTIFY_MAX_ATTEMPTS", base.max_attempts)),
            workers=max(1, int(_env_float("JUWEI_NOTIFY_WORKERS", base.workers))),
            rate_limit_pause={k: float(pause) for k in base.rate_limit_pause} if pause else base.rate_limit_pause,
            public_url=os.environ.get("JUWEI_NOTIFY_PUBLIC_URL") or None,
        )


@dataclass(frozen=True)
class ChannelInfo:
    channel: str
    compound: str
    building: str
    kind: str
    language: str
    config: str
    active: bool
    label: str  # the building's number, for texts


@dataclass(frozen=True)
class Claimed:
    id: int
    delivery: str
    message: str | None
    priority: str
    attempt: int
    created_at: datetime
    title: str
    body: str
    traceparent: str | None = None  # the trace it was queued in


def aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


class Seat:
    """What every part of a dispatcher works with: the runtime, its pacing, its clock and its name on leases."""

    runtime: Runtime
    policy: DispatchPolicy
    clock: Callable[[], datetime]
    rng: random.Random
    owner: str
    more_due: bool
    _lock: threading.Lock
    _held: dict[str, datetime]

    alert: Callable[..., None]
