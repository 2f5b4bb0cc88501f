"""One-time invitations: a link (and its QR code) that gives a volunteer or a household a session of their own.

The key is issued in every service when staff invite; the invitation keeps it sealed until the link is opened
once, within its time. Only the SHA-256 of the link's token is stored.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from console.sessions import token_hash
from console.tables import invitations
from juwei.session import Session


@dataclass(frozen=True)
class Invitation:
    compound: str
    role: str
    holder_kind: str
    holder: str
    buildings: list[str] | None
    key_id: str
    sealed_key: str
    key_expires_at: datetime


def new_key() -> tuple[str, str]:
    """A key of the kernel's form, jw_<id>_<secret>, made here so the same key goes to every service."""
    key_id = secrets.token_hex(8)
    return key_id, f"jw_{key_id}_{secrets.token_urlsafe(32)}"


def create(
    session: Session,
    invitation: Invitation,
    *,
    invited_by: str,
    label: str | None,
    lasts: timedelta,
    now: datetime | None = None,
) -> str:
    """Store the invitation; returns the link's token (shown only this once)."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(24)
    session.execute(
        insert(invitations).values(
            token_hash=token_hash(token),
            compound=invitation.compound,
            role=invitation.role,
            holder_kind=invitation.holder_kind,
            holder=invitation.holder,
            buildings=json.dumps(invitation.buildings) if invitation.buildings is not None else None,
            label=label,
            key_id=invitation.key_id,
            sealed_key=invitation.sealed_key,
            key_expires_at=invitation.key_expires_at,
            invited_by=invited_by,
            created_at=now,
            expires_at=now + lasts,
        )
    )
    return token


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _of(row: dict) -> Invitation:
    return Invitation(
        compound=row["compound"],
        role=row["role"],
        holder_kind=row["holder_kind"],
        holder=row["holder"],
        buildings=json.loads(row["buildings"]) if row["buildings"] is not None else None,
        key_id=row["key_id"],
        sealed_key=row["sealed_key"],
        key_expires_at=_aware(row["key_expires_at"]),
    )


def find_open(session: Session, token: str, now: datetime | None = None) -> Invitation | None:
    """The invitation of a link not yet used and still in time; None otherwise."""
    now = now or datetime.now(UTC)
    row = session.execute(select(invitations).where(invitations.c.token_hash == token_hash(token))).mappings().first()
    if row is None or row["used_at"] is not None or _aware(row["expires_at"]) <= now:
        return None
    return _of(dict(row))


def use(session: Session, token: str, now: datetime | None = None) -> Invitation | None:
    """Mark the link used, once: of two browsers opening it at the same moment, one gets the session."""
    now = now or datetime.now(UTC)
    found = find_open(session, token, now)
    if found is None:
        return None
    claimed = session.execute(
        update(invitations)
        .where(invitations.c.token_hash == token_hash(token), invitations.c.used_at.is_(None))
        .values(used_at=now)
    )
    return found if claimed.rowcount == 1 else None
