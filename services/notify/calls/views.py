"""The unreachable households and their calls, as read models (rebuilt by ``juwei replay notify``).

``notify_unreachable``: every household ever marked as hearing no group (from residents events), with its
floor and room; ``marked`` false once it hears its group again (the row stays: old calls still show where).
``notify_calls``: one row per household an urgent message must reach, projected from notify's own
``CallsListed`` and ``HouseholdCalled`` (who marked it done, and when).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table, update

from contracts.notify import CallsListed, HouseholdCalled
from contracts.residents import HouseholdMarkedReachable, HouseholdMarkedUnreachable
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.notify.calls.domain import call_id
from services.notify.views import tables  # notify's one metadata: migrations are checked against it whole

unreachable = Table(
    "notify_unreachable",
    tables,
    Column("household", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("floor", Integer, nullable=False),
    Column("room", Integer, nullable=False),
    Column("reason", String(20), nullable=False),
    Column("marked", Boolean, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)
calls = Table(
    "notify_calls",
    tables,
    Column("call", String(100), primary_key=True),
    Column("call_list", String(100), nullable=False),
    Column("compound", String(64), nullable=False),
    Column("building", String(100), nullable=False),
    Column("household", String(100), nullable=False),
    Column("message", String(100), nullable=False),
    Column("listed_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("done_by", String(64), nullable=True),
    Index("ix_notify_calls_building", "building", "done_at"),
    Index("ix_notify_calls_due", "compound", "done_at", "due_at"),
)


class Unreachable(Projection):
    name = "unreachable"
    tables = (unreachable,)
    reads = (HouseholdMarkedUnreachable, HouseholdMarkedReachable)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = envelope.data
        if envelope.type.split(".")[2] == "HouseholdMarkedUnreachable":
            upsert(
                session,
                unreachable,
                {"household": data["household"]},
                {
                    "compound": envelope.compound,
                    "building": data["building"],
                    "floor": int(data["floor"]),
                    "room": int(data["room"]),
                    "reason": str(data.get("reason", "no_smartphone"))[:20],
                    "marked": True,
                    "changed_at": envelope.time,
                },
            )
        else:
            session.execute(
                update(unreachable)
                .where(unreachable.c.household == data["household"])
                .values(marked=False, changed_at=envelope.time)
            )


class Calls(Projection):
    name = "calls"
    tables = (calls,)
    reads = (CallsListed, HouseholdCalled)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data, compound = envelope.data, envelope.compound
        call_list = envelope.subject.removeprefix("calls-")
        if envelope.type.split(".")[2] == "CallsListed":
            session.execute(
                calls.insert(),
                [
                    {
                        "call": call_id(compound, call_list, household),
                        "call_list": call_list,
                        "compound": compound,
                        "building": data["building"],
                        "household": household,
                        "message": data["message"],
                        "listed_at": envelope.time,
                        "due_at": _moment(data["due_at"]),
                        "done_at": None,
                        "done_by": None,
                    }
                    for household in data["households"]
                ],
            )
        else:
            session.execute(
                update(calls)
                .where(calls.c.call == call_id(compound, call_list, data["household"]))
                .values(done_at=envelope.time, done_by=str(data["by"])[:64])
            )


def _moment(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def projections() -> list[Projection]:
    return [Unreachable(), Calls()]
