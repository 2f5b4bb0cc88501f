"""Which subdistrict (街道) each compound belongs to: the tier above the compounds that a key may be scoped to.

Each service keeps the placement it has learnt (from the suite's register of compounds, through a projection
the suite supplies) in its own ``juwei_compound_subdistricts``; a subdistrict key reaches the compounds placed
in its subdistrict at the time of each request, so a compound registered later is covered at once.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, String, Table, select

from juwei.events import utcnow
from juwei.projection import upsert
from juwei.session import Session
from juwei.store import metadata

compound_subdistricts_table = Table(
    "juwei_compound_subdistricts",
    metadata,
    Column("compound", String(64), primary_key=True),
    Column("subdistrict", String(64), nullable=False, index=True),
    Column("placed_at", DateTime(timezone=True), nullable=False),
)


def place_compound(session: Session, compound: str, subdistrict: str) -> None:
    """Record (or move) a compound into a subdistrict."""
    upsert(
        session,
        compound_subdistricts_table,
        {"compound": compound},
        {"subdistrict": subdistrict, "placed_at": utcnow()},
    )


def compounds_of(session: Session | Connection, subdistrict: str) -> frozenset[str]:
    """The compounds placed in a subdistrict (none yet: an empty set, which reaches nothing)."""
    table = compound_subdistricts_table
    return frozenset(session.execute(select(table.c.compound).where(table.c.subdistrict == subdistrict)).scalars())


def subdistrict_of(session: Session, compound: str) -> str | None:
    table = compound_subdistricts_table
    return session.execute(select(table.c.subdistrict).where(table.c.compound == compound)).scalar()
