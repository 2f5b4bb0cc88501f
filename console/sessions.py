"""Sessions: a random token in an HttpOnly cookie, the row (its hash, the person, their sealed key) here.

A session ends at sign-out, after its idle time unused, or at its absolute end; every form carries the
session's CSRF token, checked before anything is done.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from console.tables import sessions
from juwei.session import Session

COOKIE = "console_session"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Person:
    """Who is signed in: their role, compound, buildings (None: all of the compound) and the key they act with."""

    token_hash: str
    csrf: str
    compound: str
    role: str
    holder_kind: str
    holder: str
    buildings: tuple[str, ...] | None
    key_id: str
    sealed_key: str
    username: str | None
    expires_at: datetime

    @property
    def is_staff(self) -> bool:
        return self.username is not None

    def may_see(self, building: str) -> bool:
        return self.buildings is None or building in self.buildings

    def csrf_matches(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf, given or "")


def start(
    session: Session,
    *,
    compound: str,
    role: str,
    holder_kind: str,
    holder: str,
    buildings: list[str] | None,
    key_id: str,
    sealed_key: str,
    username: str | None,
    idle: timedelta,
    lasts: timedelta,
    now: datetime | None = None,
) -> str:
    """A new session row; returns the cookie's token (shown only this once)."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    session.execute(
        insert(sessions).values(
            token_hash=token_hash(token),
            csrf=secrets.token_urlsafe(32),
            username=username,
            compound=compound,
            role=role,
            holder_kind=holder_kind,
            holder=holder,
            buildings=json.dumps(sorted(buildings)) if buildings is not None else None,
            key_id=key_id,
            sealed_key=sealed_key,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lasts,
            idle_seconds=str(int(idle.total_seconds())),
        )
    )
    return token


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def find(session: Session, token: str | None, now: datetime | None = None) -> Person | None:
    """The person of a live session (and its idle clock restarted); None if unknown, ended or expired."""
    if not token:
        return None
    now = now or datetime.now(UTC)
    row = session.execute(select(sessions).where(sessions.c.token_hash == token_hash(token))).mappings().first()
    if row is None or row["ended_at"] is not None:
        return None
    idle = timedelta(seconds=int(row["idle_seconds"]))
    if now >= _aware(row["expires_at"]) or now - _aware(row["last_seen_at"]) >= idle:
        session.execute(update(sessions).where(sessions.c.token_hash == row["token_hash"]).values(ended_at=now))
        return None
    # Touch at most once a minute: a page of many requests writes once.
    if now - _aware(row["last_seen_at"]) >= timedelta(minutes=1):
        session.execute(update(sessions).where(sessions.c.token_hash == row["token_hash"]).values(last_seen_at=now))
    return Person(
        token_hash=row["token_hash"],
        csrf=row["csrf"],
        compound=row["compound"],
        role=row["role"],
        holder_kind=row["holder_kind"],
        holder=row["holder"],
        buildings=tuple(json.loads(row["buildings"])) if row["buildings"] is not None else None,
        key_id=row["key_id"],
        sealed_key=row["sealed_key"],
        username=row["username"],
        expires_at=_aware(row["expires_at"]),
    )


def end(session: Session, person: Person, now: datetime | None = None) -> None:
    session.execute(
        update(sessions)
        .where(sessions.c.token_hash == person.token_hash, sessions.c.ended_at.is_(None))
        .values(ended_at=now or datetime.now(UTC))
    )
