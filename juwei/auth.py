"""API keys: stored hashed, each carrying a role, a compound (none: district operator) and buildings.

A key reads ``jw_<id>_<secret>``; only the SHA-256 of the secret is stored. SHA-256 is enough here because
secrets are 32 random bytes (no dictionary to attack), and it keeps every request's check cheap. Routes
declare what they need with ``require(...)``; the caller's scope is checked against the compound and
building a request touches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import Column, DateTime, String, Table, Text, insert, select, update
from sqlalchemy.orm import Session

from juwei.events import utcnow
from juwei.store import metadata

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
)

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Juwei API key: jw_<id>_<secret>")


# Path parameters every service uses: a compound id and an id local to a compound.
CompoundId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="Compound id", examples=["c1"])]
LocalId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", description="Id within the compound")]


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's role and scope. ``compound`` None means every compound (district)."""

    key_id: str
    role: str
    compound: str | None
    buildings: frozenset[str] | None

    @property
    def is_district(self) -> bool:
        return self.compound is None

    def may_see_compound(self, compound: str) -> bool:
        return self.compound is None or self.compound == compound

    def may_act_on(self, compound: str, building: str | None = None) -> bool:
        if not self.may_see_compound(compound):
            return False
        return building is None or self.buildings is None or building in self.buildings

    def require_scope(self, compound: str, building: str | None = None) -> None:
        if not self.may_act_on(compound, building):
            where = f"building {building} of compound {compound}" if building else f"compound {compound}"
            raise HTTPException(status_code=403, detail=f"this key may not act on {where}")


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
) -> IssuedKey:
    """Store a new key (or a given one, for bootstrap and for the same key in every service)."""
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
    }
    if existing is None:
        session.execute(insert(api_keys_table).values(id=key_id, created_at=utcnow(), **values))
    else:
        session.execute(update(api_keys_table).where(api_keys_table.c.id == key_id).values(revoked_at=None, **values))
    caller = Caller(key_id, role, compound, frozenset(chosen) if chosen is not None else None)
    return IssuedKey(key, caller)


def revoke_key(session: Session, key_id: str) -> bool:
    result = session.execute(
        update(api_keys_table)
        .where(api_keys_table.c.id == key_id, api_keys_table.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


def authenticate(session: Session, key: str) -> Caller | None:
    parts = split_key(key)
    if parts is None:
        return None
    key_id, secret = parts
    row = session.execute(select(api_keys_table).where(api_keys_table.c.id == key_id)).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["secret_hash"], _hash(secret)):
        return None
    buildings = frozenset(json.loads(row["buildings"])) if row["buildings"] else None
    return Caller(row["id"], row["role"], row["compound"], buildings)


def current_caller(request: Request, key: Annotated[str | None, Depends(_header)]) -> Caller:
    if not key:
        raise HTTPException(
            status_code=401, detail="send an API key in the X-API-Key header", headers={"WWW-Authenticate": "APIKey"}
        )
    runtime = request.app.state.runtime
    with runtime.database.reading() as session:
        caller = authenticate(session, key)
    if caller is None:
        raise HTTPException(
            status_code=401, detail="unknown or revoked API key", headers={"WWW-Authenticate": "APIKey"}
        )
    request.state.caller = caller
    return caller


def require(*roles: str) -> Callable[..., Caller]:
    """A dependency that admits the given roles (none given: any authenticated caller)."""
    allowed = frozenset(roles)

    def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if allowed and caller.role not in allowed:
            raise HTTPException(
                status_code=403, detail=f"role {caller.role} may not do this; needs one of {', '.join(sorted(allowed))}"
            )
        return caller

    return dependency
