"""API keys: stored hashed, each carrying a role, a compound (none: district operator) and buildings.

A key reads ``jw_<id>_<secret>``; only the SHA-256 of the secret is stored. SHA-256 is enough here because
secrets are 32 random bytes (no dictionary to attack), and it keeps every request's check cheap. Routes
declare what they need with ``require(...)``; the caller's scope is checked against the compound and
building a request touches.

A key can be revoked at once, or rotated: the successor gets the same role and scope, and the old key keeps
working until its ``expires_at`` (the grace period in which its holder switches). Every authenticated
request passes the key's rate limit (a token bucket per key id and process): past it, 429 and Retry-After.

Every key belongs to someone: its ``holder`` names the person (a staff member, a volunteer, a household,
an official outside the register) or the system it was issued to, so the ``actor`` of every event resolves
to a person. A key may carry a ``grant`` (what another system may read: event types, compounds, health).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import Column, Connection, DateTime, String, Table, Text, bindparam, insert, select, update

from juwei.callers import Caller, Forbidden, Grant, Holder
from juwei.events import utcnow
from juwei.problems import Refusal
from juwei.session import Session
from juwei.store import metadata
from juwei.subdistricts import compounds_of
from juwei.wording import Said

api_keys_table = Table(
    "juwei_api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("role", String(64), nullable=False),
    Column("compound", String(64), nullable=True),
    Column("buildings", Text, nullable=True),
    Column("label", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Set by rotation: the old key works until then, and names the key that replaced it.
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("successor", String(32), nullable=True),
    # Who the key was issued to: kind (staff, volunteer, household, official, system) and id or name.
    Column("holder_kind", String(20), nullable=True),
    Column("holder", String(200), nullable=True),
    # What the key may read beyond its role, as JSON (``Grant``): other systems' keys.
    Column("read_grant", Text, nullable=True),
    # A subdistrict's key (compound None): it reaches the compounds placed in it (``juwei.subdistricts``).
    Column("subdistrict", String(64), nullable=True),
)

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Juwei API key: jw_<id>_<secret>")


# Path parameters every service uses: a compound id and an id local to a compound.
CompoundId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="Compound id", examples=["c1"])]
LocalId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", description="Id within the compound")]


@dataclass(frozen=True)
class IssuedKey:
    key: str
    caller: Caller


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "jw" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def issue_key(
    session: Session,
    role: str,
    compound: str | None,
    buildings: Iterable[str] | None = None,
    label: str | None = None,
    key: str | None = None,
    *,
    holder: Holder,
    grant: Grant | None = None,
    expires_at: datetime | None = None,
    subdistrict: str | None = None,
) -> IssuedKey:
    """Store a new key (or a given one, for bootstrap and for the same key in every service) for ``holder``;
    ``expires_at`` ends its life by itself (an invitation's key for a volunteer's shift). A ``subdistrict``
    key names no compound: it reaches the compounds placed in that subdistrict."""
    if subdistrict is not None and (compound is not None or buildings is not None):
        raise ValueError("a subdistrict's key names no compound and no buildings")
    if key is None:
        key = f"jw_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    parts = split_key(key)
    if parts is None:
        raise ValueError("an API key reads jw_<id>_<secret>")
    key_id, secret = parts
    chosen = sorted(set(buildings)) if buildings is not None else None
    existing = session.execute(select(api_keys_table.c.id).where(api_keys_table.c.id == key_id)).first()
    values = {
        "secret_hash": _hash(secret),
        "role": role,
        "compound": compound,
        "buildings": json.dumps(chosen) if chosen is not None else None,
        "label": label,
        "holder_kind": holder.kind,
        "holder": holder.id,
        "read_grant": grant.to_json() if grant is not None else None,
        "expires_at": expires_at,
        "subdistrict": subdistrict,
    }
    if existing is None:
        session.execute(insert(api_keys_table).values(id=key_id, created_at=utcnow(), **values))
    else:
        session.execute(
            update(api_keys_table)
            .where(api_keys_table.c.id == key_id)
            .values(revoked_at=None, successor=None, **values)
        )
    caller = Caller(
        key_id, role, compound, frozenset(chosen) if chosen is not None else None, holder, grant, subdistrict,
        compounds_of(session, subdistrict) if subdistrict is not None else None,
    )  # fmt: skip
    # The answer of this transaction's command shows a secret: the command ledger must not keep it.
    session.info["juwei.secret_shown"] = True
    return IssuedKey(key, caller)


def revoke_key(session: Session, key_id: str) -> bool:
    result = session.execute(
        update(api_keys_table)
        .where(api_keys_table.c.id == key_id, api_keys_table.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


def revoke_keys_of(session: Session, holder: Holder) -> int:
    """End at once every key still open that was issued to ``holder`` (a volunteer stood down)."""
    result = session.execute(
        update(api_keys_table)
        .where(
            api_keys_table.c.holder_kind == holder.kind,
            api_keys_table.c.holder == holder.id,
            api_keys_table.c.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)


def _holder_of(row: Any) -> Holder | None:
    return Holder(row["holder_kind"], row["holder"]) if row["holder_kind"] and row["holder"] else None


def key_holder(session: Session, key_id: str) -> dict[str, Any] | None:
    """Who a key (an event's ``actor``) belongs to, revoked or not: role, scope and holder; never its hash."""
    row = session.execute(select(api_keys_table).where(api_keys_table.c.id == key_id)).mappings().first()
    if row is None:
        return None
    holder = _holder_of(row)
    return {
        "key_id": row["id"],
        "role": row["role"],
        "compound": row["compound"],
        "subdistrict": row["subdistrict"],
        "holder_kind": holder.kind if holder else None,
        "holder": holder.id if holder else None,
        "label": row["label"],
        "revoked": row["revoked_at"] is not None,
    }


class KeyNotActive(LookupError):
    """No such key, or it was revoked or has already expired."""


def rotate_key(
    session: Session, key_id: str, grace: timedelta, successor: str | None = None, now: datetime | None = None
) -> IssuedKey:
    """Issue a successor with the same role and scope; the old key expires after ``grace`` (0: at once).

    ``successor`` stores a given key (the same new key in every service), as ``issue_key`` does.
    """
    moment = now or utcnow()
    row = session.execute(select(api_keys_table).where(api_keys_table.c.id == key_id)).mappings().first()
    if row is None or not _active(row, moment):
        raise KeyNotActive(f"no active key {key_id}")
    buildings = json.loads(row["buildings"]) if row["buildings"] else None
    holder = _holder_of(row) or Holder("system", row["label"] or "key issued before keys named their holders")
    issued = issue_key(
        session,
        row["role"],
        row["compound"],
        buildings,
        row["label"],
        key=successor,
        holder=holder,
        grant=Grant.from_json(row["read_grant"]),
        subdistrict=row["subdistrict"],
    )
    if issued.caller.key_id == key_id:
        raise ValueError("a key cannot succeed itself")
    expires = moment + grace
    # A shorter grace than one already running wins; a rotation never extends an old key's life.
    if row["expires_at"] is not None and _aware(row["expires_at"]) < expires:
        expires = _aware(row["expires_at"])
    session.execute(
        update(api_keys_table)
        .where(api_keys_table.c.id == key_id)
        .values(expires_at=expires, successor=issued.caller.key_id)
    )
    return issued


def active_keys(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Keys that still open doors (never their hashes), oldest first."""
    moment = now or utcnow()
    rows = session.execute(
        select(api_keys_table).where(api_keys_table.c.revoked_at.is_(None)).order_by(api_keys_table.c.created_at)
    ).mappings()
    shown = (
        "id", "role", "compound", "subdistrict", "buildings", "label", "holder_kind", "holder", "read_grant",
        "created_at", "expires_at", "successor",
    )  # fmt: skip
    return [{name: row[name] for name in shown} for row in rows if _active(row, moment)]


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time here is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _active(row: Any, now: datetime) -> bool:
    if row["revoked_at"] is not None:
        return False
    return row["expires_at"] is None or _aware(row["expires_at"]) > now


# Every request reads its key: one statement built once, so no request builds it or looks it up in the cache.
_KEY_BY_ID = select(api_keys_table).where(api_keys_table.c.id == bindparam("key_id"))


def authenticate(session: Session | Connection, key: str) -> Caller | None:
    """The caller a key names when it still opens doors (read from the database every time: a revocation or an
    expiry takes effect at the next request, in every process)."""
    parts = split_key(key)
    if parts is None:
        return None
    key_id, secret = parts
    connection = session.connection() if isinstance(session, Session) else session
    row = connection.execute(_KEY_BY_ID, {"key_id": key_id}).mappings().first()
    if row is None or not _active(row, utcnow()):
        return None
    if not hmac.compare_digest(row["secret_hash"], _hash(secret)):
        return None
    buildings = frozenset(json.loads(row["buildings"])) if row["buildings"] else None
    subdistrict = row["subdistrict"]
    return Caller(
        row["id"], row["role"], row["compound"], buildings, _holder_of(row), Grant.from_json(row["read_grant"]),
        subdistrict, compounds_of(connection, subdistrict) if subdistrict is not None else None,
    )  # fmt: skip


def key_row(session: Session, key_id: str) -> dict[str, Any] | None:
    """The stored row of a key (its hash included: only for the kernel's own checks), revoked or not."""
    row = session.execute(select(api_keys_table).where(api_keys_table.c.id == key_id)).mappings().first()
    return dict(row) if row is not None else None


def opens(row: dict[str, Any], key: str) -> bool:
    """Whether ``key``'s secret is the one stored in ``row`` (whatever the row's state)."""
    parts = split_key(key)
    return parts is not None and hmac.compare_digest(row["secret_hash"], _hash(parts[1]))


def is_active(row: dict[str, Any], now: datetime | None = None) -> bool:
    """Neither revoked nor past its expiry."""
    return _active(row, now or utcnow())


def aware(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones)."""
    return _aware(moment) if moment is not None else None


def authenticate_id(session: Session, key_id: str) -> bool:
    """Whether the key with this id still opens doors (neither revoked nor expired)."""
    row = (
        session.execute(
            select(api_keys_table.c.revoked_at, api_keys_table.c.expires_at).where(api_keys_table.c.id == key_id)
        )
        .mappings()
        .first()
    )
    return row is not None and _active(row, utcnow())


class RateLimiter:
    """A token bucket per API key: ``rate`` requests a second on average, bursts of up to ``burst``.

    Kept in the process's memory: each service process limits the requests it serves itself.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()  # sync routes authenticate on the thread pool

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key_id: str, now: float | None = None) -> float | None:
        """Spend one token; None when allowed, else the seconds until a token is back."""
        if not self.enabled:
            return None
        moment = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.burst), moment))
            tokens = min(float(self.burst), tokens + (moment - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, moment)
                return None
            self._buckets[key_id] = (tokens, moment)
            return (1 - tokens) / self.rate


def _rate_limit(request: Request, caller: Caller) -> None:
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    wait = limiter.take(caller.key_id) if limiter is not None else None
    if wait is not None:
        assert limiter is not None
        raise Refusal(
            429,
            f"this key made more than {limiter.rate:g} requests a second (bursts of {limiter.burst}); "
            "slow down and retry after the time in Retry-After",
            Said("rate-limited", {"rate": f"{limiter.rate:g}", "burst": limiter.burst}),
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def current_caller(request: Request, key: Annotated[str | None, Depends(_header)]) -> Caller:
    if not key:
        raise Refusal(
            401, "send an API key in the X-API-Key header", Said("key-missing"), headers={"WWW-Authenticate": "APIKey"}
        )
    runtime = request.app.state.runtime
    with runtime.database.read_engine.connect() as connection:  # BEGIN, one SELECT, ROLLBACK: nothing more
        caller = authenticate(connection, key)
    if caller is None:
        raise Refusal(401, "unknown or revoked API key", Said("key-unknown"), headers={"WWW-Authenticate": "APIKey"})
    request.state.caller = caller
    _rate_limit(request, caller)
    return caller


def _role_check(caller: Caller, allowed: frozenset[str]) -> None:
    if allowed and caller.role not in allowed:
        roles = ", ".join(sorted(allowed))
        said = Said("role-refused", {"role": caller.role, "allowed": roles})
        raise Forbidden(f"role {caller.role} may not do this; needs one of {roles}", said=said)


def require(*roles: str) -> Callable[..., Caller]:
    """A dependency that admits the given roles (none given: any authenticated caller)."""
    allowed = frozenset(roles)

    def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        _role_check(caller, allowed)
        return caller

    # Tests and tooling read who a route admits from here (e.g. the access matrix).
    dependency.juwei_roles = allowed  # type: ignore[attr-defined]
    return dependency


def admit(*roles: str) -> Callable[..., Caller]:
    """``require`` for the routes of one compound (``/compounds/{compound}/…``): the roles, then the key's scope
    over the compound in the path. A building the request touches is checked where it is known."""
    allowed = frozenset(roles)

    def dependency(compound: CompoundId, caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        _role_check(caller, allowed)
        caller.require_scope(compound)
        return caller

    dependency.juwei_roles = allowed  # type: ignore[attr-defined]
    return dependency
