"""A two-service sample domain for the kernel's tests: a tally desk and a board that reads its events.

``desk`` records tallies per building (an aggregate per building, with a rule and snapshots); ``board``
consumes the desk's topic and keeps totals per building. Names carry ``JUWEI_SAMPLE_SUFFIX`` so that
every test gets its own topics, consumer groups and databases, also in child processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import Column, Integer, MetaData, String, Table, select, update

from juwei.aggregate import Aggregate, Invalid
from juwei.auth import require
from juwei.callers import Caller
from juwei.consumer import Delivery
from juwei.events import DomainEvent, Envelope, EventRegistry
from juwei.projection import Projection
from juwei.repository import Repository
from juwei.service import Runtime, ServiceDefinition
from juwei.session import Session

MIGRATIONS = Path(__file__).resolve().parent / "sample_migrations"
registry = EventRegistry()
tables = MetaData()


class Tallied(DomainEvent):
    event_type = "juwei.sample.Tallied"
    version = 2
    building: str
    amount: int
    note: str = ""


class TalliedV1(DomainEvent):
    """The first version had no note and called the amount ``count``."""

    event_type = "juwei.sample.Tallied"
    version = 1
    building: str
    count: int


registry.register(Tallied)


@registry.upcaster("juwei.sample.Tallied.v1", "juwei.sample.Tallied.v2")
def _tallied_v1_to_v2(data: dict) -> dict:
    return {"building": data["building"], "amount": data["count"], "note": ""}


class Tally(Aggregate):
    stream_prefix = "tally"
    snapshot_every = 10

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.total = 0

    def add(self, amount: int, note: str = "") -> None:
        if self.total + amount < 0:
            raise Invalid(f"building {self.id} would go below zero", code="negative-tally", building=self.id)
        self.record(Tallied(building=self.id, amount=amount, note=note))

    def on_Tallied(self, event: Tallied) -> None:
        self.total += event.amount


desk_totals = Table(
    "desk_totals",
    tables,
    Column("building", String(64), primary_key=True),
    Column("total", Integer, nullable=False),
    Column("events", Integer, nullable=False),
)
board_totals = Table(
    "board_totals",
    tables,
    Column("building", String(64), primary_key=True),
    Column("total", Integer, nullable=False),
    Column("events", Integer, nullable=False),
)


def _add(session: Session, table: Table, building: str, amount: int) -> None:
    changed = session.execute(
        update(table)
        .where(table.c.building == building)
        .values(total=table.c.total + amount, events=table.c.events + 1)
    ).rowcount
    if not changed:
        session.execute(table.insert().values(building=building, total=amount, events=1))


class DeskTotals(Projection):
    name = "desk_totals"
    tables = (desk_totals,)
    types = frozenset({"juwei.sample.Tallied.v2"})

    def apply(self, session: Session, envelope: Envelope) -> None:
        _add(session, desk_totals, envelope.data["building"], envelope.data["amount"])


class BoardTotals(Projection):
    name = "board_totals"
    tables = (board_totals,)
    types = frozenset({"juwei.sample.Tallied.v2", "juwei.sample.Tallied.v1"})

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = registry.decode(envelope.type, envelope.data)
        assert isinstance(event, Tallied)
        if event.note == "poison":
            raise ValueError("the board refuses poison")
        _add(session, board_totals, event.building, event.amount)


class TallyIn(BaseModel):
    amount: int = Field(ge=-1000, le=1000)
    note: str = Field("", max_length=50)
    expected_version: int | None = Field(None, ge=0)


router = APIRouter()


@router.post("/compounds/{compound}/tallies/{building}", status_code=201)
def add_tally(
    compound: str,
    building: str,
    body: TallyIn,
    request: Request,
    caller: Annotated[Caller, Depends(require("staff"))],
) -> dict:
    caller.require_scope(compound, building)
    runtime: Runtime = request.app.state.runtime
    repo = Repository(runtime.store, Tally)
    with runtime.database.unit_of_work() as session:
        tally = repo.load(session, building)
        if body.expected_version is not None:
            tally.version = body.expected_version
        tally.add(body.amount, body.note)
        envelopes = repo.save(session, tally, compound=compound, actor=caller.key_id)
    return {"version": tally.version, "position": envelopes[-1].position}


@router.get("/compounds/{compound}/tallies")
def list_tallies(compound: str, request: Request, caller: Annotated[Caller, Depends(require())]) -> dict:
    caller.require_scope(compound)
    runtime: Runtime = request.app.state.runtime
    with runtime.database.reading() as session:
        rows = session.execute(select(desk_totals).order_by(desk_totals.c.building)).mappings().all()
    return {"tallies": [dict(row) for row in rows]}


def _on_received(runtime: Runtime, session: Session, delivery: Delivery) -> None:
    """Nothing beyond the projection; present so the hook is exercised."""


def definitions(suffix: str) -> tuple[ServiceDefinition, ServiceDefinition]:
    """The desk and the board, named for one test."""
    desk = ServiceDefinition(
        name=f"desk_{suffix}",
        registry=registry,
        routers=[router],
        projections=lambda: [DeskTotals()],
        migrations=MIGRATIONS,
        wording={"negative-tally": "楼栋 {building} 的计数不能小于零", "tally-missing": "没有 {nothing} 这个计数"},
    )
    board = ServiceDefinition(
        name=f"board_{suffix}",
        registry=registry,
        projections=lambda: [BoardTotals()],
        consumes=[desk.topic],
        catalogue=registry,
        on_received=_on_received,
        migrations=MIGRATIONS,
    )
    return desk, board


# What `juwei relay tests.kernel.sample:desk` loads in a child process.
desk, board = definitions(os.environ.get("JUWEI_SAMPLE_SUFFIX", "t"))
