"""The tables of testing's read models: who lives where (from ``juwei.residents``), sampling points, rounds,
plans and calls, samples and results, cases and disinfections, and the keys' bindings. Ids are the
district-wide ids the events carry (``<compound>:<id>``); times are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from juwei.events import Envelope
from juwei.projection import write_many
from juwei.session import Session

tables = MetaData()
Id = String(100)

# --- who lives where (from juwei.residents) ----------------------------------------------------------------
buildings = Table(
    "tst_buildings",
    tables,
    Column("building", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("number", String(40), nullable=False),
    Column("floors", Integer, nullable=False),
    Column("lifts", Integer, nullable=False),
    Column("lift_capacity", Integer, nullable=False),
)
households = Table(
    "tst_households",
    tables,
    Column("household", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", Id, nullable=False, index=True),
    Column("floor", Integer, nullable=False),
    Column("room", Integer, nullable=False),
)
residents = Table(
    "tst_residents",
    tables,
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("household", Id, nullable=False, index=True),
    Column("building", Id, nullable=False, index=True),
    Column("bedridden", Boolean, nullable=False),
    Column("present", Boolean, nullable=False),  # false once erased from the register
)
# Volunteers serving the compound (from juwei.residents): a point's key may be issued to one of them.
volunteers = Table(
    "tst_volunteers",
    tables,
    Column("volunteer", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", Id, nullable=False),
    Column("serving", Boolean, nullable=False),
)

# --- sampling points ---------------------------------------------------------------------------------------
points = Table(
    "tst_points",
    tables,
    Column("point", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("location", String(200), nullable=False),
    Column("throughput", Float, nullable=False),
    Column("volunteers", Text, nullable=False),
    Column("open", Boolean, nullable=False),
)
point_buildings = Table(
    "tst_point_buildings",
    tables,
    Column("building", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("point", Id, nullable=False, index=True),
    Column("proposed", Boolean, nullable=False),
)

# --- rounds, plans and calls -------------------------------------------------------------------------------
rounds = Table(
    "tst_rounds",
    tables,
    Column("round", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("kind", String(10), nullable=False),
    Column("on", Date, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("points", Text, nullable=False),
    Column("rules", Text, nullable=False),
    Column("pool_size", Integer, nullable=False),
    Column("auto_advance", Boolean, nullable=False),
)
plans = Table(
    "tst_plans",
    tables,
    Column("round", Id, primary_key=True),
    Column("point", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("mode", String(20), nullable=False),
    Column("queue_limit", Integer, nullable=False),
    Column("peak_queue", Integer, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("called", Integer, nullable=False),
)
calls = Table(
    "tst_calls",
    tables,
    Column("round", Id, primary_key=True),
    Column("point", Id, primary_key=True),
    Column("call", Integer, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("building", Id, nullable=False),
    Column("lowest_floor", Integer, nullable=False),
    Column("highest_floor", Integer, nullable=False),
    Column("people", Integer, nullable=False),
    Column("lift_riders", Integer, nullable=False),
    Column("rooms", Text, nullable=False),  # JSON list; empty: every room of the floors
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("called_at", DateTime(timezone=True), nullable=True),
    Column("called_by", String(20), nullable=True),
)
Index("ix_tst_calls_round_building", calls.c["round"], calls.c.building)
door_to_door = Table(
    "tst_door_to_door",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("floor", Integer, nullable=False),
)

# --- samples, tubes, results -------------------------------------------------------------------------------
samples = Table(
    "tst_samples",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    # The primary key is the backstop against two volunteers taking the same resident's sample at once.
    Column("attempt", Integer, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("tube", Id, nullable=False, index=True),
    Column("kind", String(12), nullable=False),
    Column("point", Id, nullable=True),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("door_to_door", Boolean, nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
)
round_residents = Table(
    "tst_round_residents",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("status", String(24), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_tst_round_residents_round_building", round_residents.c["round"], round_residents.c.building)
tubes = Table(
    "tst_tubes",
    tables,
    Column("tube", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("round", Id, nullable=False, index=True),
    Column("kind", String(12), nullable=False),
    Column("point", Id, nullable=True),
    Column("samples", Integer, nullable=False),
    Column("result", String(10), nullable=True),
    Column("resulted_at", DateTime(timezone=True), nullable=True),
)
antigen = Table(
    "tst_antigen",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False, index=True),
    Column("building", Id, nullable=False),
    Column("result", String(10), nullable=False),
    Column("photo", String(64), nullable=True),
    Column("reported_at", DateTime(timezone=True), nullable=False),
)

# --- cases, close contacts, disinfection -------------------------------------------------------------------
cases = Table(
    "tst_cases",
    tables,
    Column("case", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("resident", Id, nullable=False, index=True),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("confirmed_on", Date, nullable=False),
    Column("scheduled_at", DateTime(timezone=True), nullable=True),
    Column("transferred_at", DateTime(timezone=True), nullable=True),
    Column("facility", String(200), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(12), nullable=True),
)
close_contacts = Table(
    "tst_close_contacts",
    tables,
    Column("case", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("since", Date, nullable=False),
)
disinfections = Table(
    "tst_disinfections",
    tables,
    Column("disinfection", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", Id, nullable=False, index=True),
    Column("done_at", DateTime(timezone=True), nullable=False),
    Column("areas", Text, nullable=False),
    Column("photos", Text, nullable=False),
    Column("case", Id, nullable=True),
)

# Not a projection: which point a sampling volunteer's key works at, which household a household's key
# speaks for (API keys carry a role, a compound and buildings only). Never rebuilt, never cleared.
key_bindings = Table(
    "tst_key_bindings",
    tables,
    Column("key_id", String(32), primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("point", Id, nullable=True),
    Column("household", Id, nullable=True),
)


def point_of(session: Session, caller: Any) -> str | None:
    """The sampling point (district-wide id) a key was issued for, if any: the feed's scope of its volunteers."""
    return session.execute(select(key_bindings.c.point).where(key_bindings.c.key_id == caller.key_id)).scalar()


def utc(moment: datetime | None) -> datetime | None:
    """UTC, tz-aware: SQLite hands back naive datetimes, and every stored time is UTC."""
    if moment is None:
        return None
    if moment.tzinfo is UTC:  # parse_time's "Z": nothing to convert (astimezone is a call per row)
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_BULK_UPSERTS: dict[tuple[str, str], Any] = {}


def bulk_upsert(session: Session, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or update every other column where the key exists: one executemany for a whole run.

    ``keys`` is the table's primary key and every row carries every column (the statement is built once per
    dialect and table, as ``juwei.projection.upsert`` does for a single row).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement = _BULK_UPSERTS.get((dialect, table.name))
    if statement is None:
        proposed = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
        others = [column.name for column in table.columns if column.name not in keys]
        statement = _BULK_UPSERTS[(dialect, table.name)] = proposed.on_conflict_do_update(
            index_elements=list(keys), set_={name: proposed.excluded[name] for name in others}
        )
    write_many(session, statement, rows)


def own_event(envelope: Envelope) -> dict[str, Any]:
    """An own event's payload with its private part: the health data testing keeps to itself."""
    return {**envelope.data, **envelope.private} if envelope.private else envelope.data
