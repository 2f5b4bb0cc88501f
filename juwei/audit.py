"""Reads of sensitive data, audited: who (the key and the person holding it), what (whose identity or health
fields), why (the purpose the caller gave, or the use of the route it called), and when.

PIPL asks that whoever handles sensitive personal information can account for it. Every read that shows a
revealed identity or health data writes one row per person shown, in the same transaction as the read, so
a read that could not be recorded is not answered either. Staff list them per compound
(``GET /compounds/{compound}/sensitive-reads``). Never rebuilt, never cleared by a replay.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Column, DateTime, Integer, String, Table, insert, select

from juwei.auth import CompoundId, key_holder, require
from juwei.callers import Caller
from juwei.events import utcnow
from juwei.paging import MAX_POSITION, Limit
from juwei.problems import Problem
from juwei.session import Session
from juwei.store import events_table, metadata

sensitive_reads_table = Table(
    "juwei_sensitive_reads",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("role", String(64), nullable=False),
    Column("holder", String(220), nullable=True),
    Column("compound", String(64), nullable=False),
    Column("building", String(100), nullable=True),
    Column("subject", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("fields", String(300), nullable=False),
    Column("purpose", String(300), nullable=False),
    Column("route", String(300), nullable=False),
    Column("request_id", String(64), nullable=True),
)

PURPOSE_HEADER = "X-Juwei-Purpose"
_PURPOSE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
# What an audited read adds to its OpenAPI operation (``openapi_extra``): the header it takes, so that its 400 is
# documented too (``juwei.openapi``).
AUDITED_READ: dict[str, Any] = {
    "parameters": [
        {
            "name": PURPOSE_HEADER,
            "in": "header",
            "required": False,
            "description": "Why you read, recorded with the read: 1-200 printable characters, UTF-8 percent-encoded;"
            " none: the use of the route",
            "schema": {"type": "string", "maxLength": 1800},
        }
    ]
}


@dataclass(frozen=True)
class SensitiveRead:
    """One person's sensitive fields shown to a caller: ``kind`` is identity or health; ids are district-wide."""

    subject: str
    kind: str
    fields: tuple[str, ...]
    building: str | None = None


def purpose_of(request: Request, default: str) -> str:
    """Why the caller reads: the ``X-Juwei-Purpose`` header when given, else what the route is for.

    Header values are ASCII: other text (Chinese) comes percent-encoded as UTF-8 (``%E9%85%8D%E8%8D%AF``).
    """
    given = request.headers.get(PURPOSE_HEADER)
    if given is None:
        return default
    given = unquote(given).strip()
    if not _PURPOSE.match(given):
        raise Problem(400, f"{PURPOSE_HEADER} must be 1-200 printable characters saying why you read", "bad-purpose")
    return given


@dataclass(frozen=True)
class Reading:
    """Why a sensitive read happens (``purpose``) and where it was asked (the route, the request's id)."""

    purpose: str
    route: str = ""
    request_id: str | None = None


def reading_of(request: Request, default_purpose: str) -> Reading:
    """The read a request makes: its ``X-Juwei-Purpose`` (else ``default_purpose``), route and request id."""
    return Reading(
        purpose_of(request, default_purpose), request.url.path[:300], getattr(request.state, "request_id", None)
    )


def record_reads(
    session: Session, reading: Reading, caller: Caller, compound: str, reads: Iterable[SensitiveRead]
) -> int:
    """One audit row per person shown, in the caller's transaction; returns how many were written."""
    now = utcnow()
    holder = str(caller.holder) if caller.holder else None
    purpose, route, request_id = reading.purpose, reading.route[:300], reading.request_id
    rows = [
        {
            "at": now,
            "key_id": caller.key_id,
            "role": caller.role,
            "holder": holder,
            "compound": compound,
            "building": read.building,
            "subject": read.subject,
            "kind": read.kind,
            "fields": ",".join(read.fields)[:300],
            "purpose": purpose[:300],
            "route": route,
            "request_id": request_id,
        }
        for read in reads
        if read.fields
    ]
    if rows:
        session.execute(insert(sensitive_reads_table), rows)
    return len(rows)


# --- listing the audit, and whose key an event's actor is ---------------------------------------------------


class SensitiveReadOut(BaseModel):
    seq: int = Field(examples=[41])
    at: datetime = Field(description="When (UTC)")
    key_id: str = Field(description="The key that read (who)")
    role: str
    holder: str | None = Field(None, description="The person or system holding the key, `kind:id` (who)")
    subject: str = Field(description="Whose data (district-wide id)", examples=["c1:r17"])
    building: str | None = None
    kind: Literal["identity", "health"] = Field(description="What kind of data (what)")
    fields: list[str] = Field(description="Which fields were shown (what)")
    purpose: str = Field(description="Why: the caller's X-Juwei-Purpose, or the use of the route")
    route: str
    request_id: str | None = None


class SensitiveReads(BaseModel):
    reads: list[SensitiveReadOut]
    next_after: int = Field(description="Pass as `after` for the next page")


class ActorOut(BaseModel):
    event: str
    type: str
    actor: str | None = Field(None, description="The key that caused the event; none for the service's own jobs")
    role: str | None = None
    holder_kind: str | None = Field(None, description="staff, volunteer, household, official or system")
    holder: str | None = Field(None, description="Who holds the key: a person's id or a system's name")
    label: str | None = None


def audit_router(auditors: Sequence[str]) -> APIRouter:
    router = APIRouter(tags=["accountability"])
    Auditor = Annotated[Caller, Depends(require(*auditors))]

    @router.get(
        "/compounds/{compound}/sensitive-reads",
        response_model=SensitiveReads,
        summary="Who read whose revealed identity or health data, what and why (PIPL accountability)",
    )
    def sensitive_reads(
        compound: CompoundId,
        request: Request,
        caller: Auditor,
        subject: Annotated[
            str | None, Query(max_length=100, description="Only reads of this person (local id)")
        ] = None,
        kind: Annotated[Literal["identity", "health"] | None, Query()] = None,
        after: Annotated[int, Query(ge=0, le=MAX_POSITION, description="`seq` of the last read already seen")] = 0,
        limit: Limit = 100,
    ) -> SensitiveReads:
        caller.require_scope(compound)
        table = sensitive_reads_table
        query = select(table).where(table.c.compound == compound, table.c.seq > after)
        if subject is not None:
            query = query.where(table.c.subject == f"{compound}:{subject}")
        if kind is not None:
            query = query.where(table.c.kind == kind)
        if caller.buildings is not None:  # staff of some buildings account for the reads in theirs
            query = query.where(table.c.building.in_(sorted(f"{compound}:{b}" for b in caller.buildings)))
        runtime = request.app.state.runtime
        with runtime.database.reading() as session:
            rows = session.execute(query.order_by(table.c.seq).limit(limit)).all()
        reads = [
            SensitiveReadOut(
                seq=row.seq,
                at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),  # SQLite keeps no time zone
                key_id=row.key_id,
                role=row.role,
                holder=row.holder,
                subject=row.subject,
                building=row.building,
                kind=row.kind,
                fields=[f for f in row.fields.split(",") if f],
                purpose=row.purpose,
                route=row.route,
                request_id=row.request_id,
            )
            for row in rows
        ]
        return SensitiveReads(reads=reads, next_after=rows[-1].seq if rows else after)

    @router.get(
        "/compounds/{compound}/events/{event_id}/actor",
        response_model=ActorOut,
        summary="Who caused an event: its actor key and the person or system holding it",
        responses={404: {"description": "No such event in this compound"}},
    )
    def actor(
        compound: CompoundId,
        event_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{36}$", description="The event's id (ce_id)")],
        request: Request,
        caller: Auditor,
    ) -> ActorOut:
        caller.require_scope(compound)
        runtime = request.app.state.runtime
        with runtime.database.reading() as session:
            row = session.execute(
                select(events_table.c.id, events_table.c.type, events_table.c.actor, events_table.c.building).where(
                    events_table.c.id == event_id, events_table.c.compound == compound
                )
            ).first()
            if row is None:
                raise Problem(404, f"no event {event_id} in compound {compound}", "not-found")
            if row.building is not None:
                caller.require_scope(compound, row.building.split(":", 1)[-1])
            held = key_holder(session, row.actor) if row.actor else None
        out = ActorOut(event=row.id, type=row.type, actor=row.actor)
        if held is not None:
            out = out.model_copy(update={k: held[k] for k in ("role", "holder_kind", "holder", "label")})
        return out

    return router
