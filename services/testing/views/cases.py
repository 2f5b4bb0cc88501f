"""Cases, their close contacts and transfers, and the disinfections of each building."""

from __future__ import annotations

import json

from sqlalchemy import (
    update,
)

from contracts import testing as ev
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.testing.views.schema import cases, close_contacts, disinfections, own_event, utc


class Cases(Projection):
    """Cases, their transfers and the close contacts in home isolation."""

    name = "cases"
    tables = (cases, close_contacts)
    reads = (ev.CaseConfirmed, ev.CloseContactsIsolated, ev.TransferScheduled, ev.CaseTransferred, ev.CaseClosed)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, own_event(envelope))
        if isinstance(event, ev.CaseConfirmed):
            upsert(
                session,
                cases,
                {"case": event.case},
                {
                    "compound": envelope.compound,
                    "resident": event.resident,
                    "household": event.household,
                    "building": event.building,
                    "status": "confirmed",
                    "confirmed_on": event.confirmed_on,
                    "scheduled_at": None,
                    "transferred_at": None,
                    "facility": None,
                    "closed_at": None,
                    "outcome": None,
                },
            )
        elif isinstance(event, ev.CloseContactsIsolated):
            for resident in event.residents or ():
                upsert(
                    session,
                    close_contacts,
                    {"case": event.case, "resident": resident},
                    {
                        "compound": envelope.compound,
                        "household": event.household,
                        "building": event.building,
                        "since": event.since,
                    },
                )
        elif isinstance(event, ev.TransferScheduled):
            session.execute(
                update(cases)
                .where(cases.c.case == event.case)
                .values(status="transfer-scheduled", scheduled_at=utc(event.scheduled_at))
            )
        elif isinstance(event, ev.CaseTransferred):
            session.execute(
                update(cases)
                .where(cases.c.case == event.case)
                .values(status="transferred", transferred_at=utc(event.transferred_at), facility=event.facility)
            )
        elif isinstance(event, ev.CaseClosed):
            session.execute(
                update(cases)
                .where(cases.c.case == event.case)
                .values(status="closed", closed_at=utc(event.closed_at), outcome=event.outcome)
            )


class Disinfections(Projection):
    """Disinfection records for the building board."""

    name = "disinfections"
    tables = (disinfections,)
    reads = (ev.DisinfectionRecorded,)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, envelope.data)
        assert isinstance(event, ev.DisinfectionRecorded)
        upsert(
            session,
            disinfections,
            {"disinfection": event.disinfection},
            {
                "compound": envelope.compound,
                "building": event.building,
                "done_at": utc(event.done_at),
                "areas": json.dumps(event.areas, ensure_ascii=False),
                "photos": json.dumps([p.model_dump() for p in event.photos]),
                "case": event.case,
            },
        )
