"""Retention: once a compound's lockdown is over, its identity and health data go; aggregate figures stay.

``retire`` runs in one transaction of a service: it destroys the vault keys of the compound's data subjects
(crypto-shredding: sealed names, phones, ID numbers and prescriptions become unreadable in events, read
models and backups alike), lets the service blank or delete its per-person health rows (``ServiceDefinition
.retention``), and records the compound with the figures kept. The append-only log is not rewritten: its
payloads carry ids only, and those ids lead to nobody once the identities are shredded. A rebuild of the
read models re-applies the retention of every retired compound in the rebuilding transaction, so a replay
never brings the data back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from sqlalchemy import Column, DateTime, String, Table, Text, delete, insert, or_, select, update

from juwei.database import Database
from juwei.events import utcnow
from juwei.session import Session
from juwei.store import lock_appends, metadata
from juwei.vault import subject_keys_table

log = structlog.get_logger("juwei.retention")

retention_table = Table(
    "juwei_retention",
    metadata,
    Column("compound", String(64), primary_key=True),
    Column("retired_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=True),
    Column("report", Text, nullable=False),
)

# What a service does to its own rows of a compound (``ServiceDefinition.retention``, bound to the service's
# runtime): returns the figures it kept and what it removed.
Scrub = Callable[[Session, str], dict[str, Any]]


def shred_subjects(session: Session, prefixes: Iterable[str]) -> int:
    """Destroy every vault key whose subject starts with one of ``prefixes``; returns how many went."""
    conditions = [subject_keys_table.c.subject.startswith(prefix, autoescape=True) for prefix in prefixes]
    if not conditions:
        return 0
    result = session.execute(delete(subject_keys_table).where(or_(*conditions)))
    return int(result.rowcount or 0)


def retire(
    database: Database, scrub: Scrub | None, compound: str, *, actor: str | None = None, service: str = ""
) -> dict[str, Any]:
    """Apply a service's retention to ``compound`` and record it; running it again repeats the scrub."""
    with database.unit_of_work() as session:
        lock_appends(session)  # no event of this service is projected half-way through the scrub
        report = scrub(session, compound) if scrub is not None else {}
        values = {"retired_at": utcnow(), "actor": actor, "report": json.dumps(report, sort_keys=True, default=str)}
        known = session.execute(select(retention_table.c.compound).where(retention_table.c.compound == compound))
        if known.first() is None:
            session.execute(insert(retention_table).values(compound=compound, **values))
        else:
            # The figures of the first run stay: a second run finds nothing left to count.
            values.pop("report")
            session.execute(update(retention_table).where(retention_table.c.compound == compound).values(**values))
    log.info("retention.retired", service=service, compound=compound)
    return report


def retired(session: Session) -> dict[str, dict[str, Any]]:
    """Compounds already retired, with the figures kept for each."""
    rows = session.execute(select(retention_table.c.compound, retention_table.c.report)).all()
    return {row.compound: json.loads(row.report) for row in rows}


def reapply(session: Session, scrub: Scrub | None) -> None:
    """Scrub again every retired compound (after a rebuild put the rows back), in the caller's transaction."""
    if scrub is None:
        return
    for compound in retired(session):
        scrub(session, compound)
