"""Retention in the supplies service: prescriptions and donor names shredded, health flags blanked.

What stays: batches, shares and deliveries (who got what, by household id), the card custody chain (which
volunteer held which card when), the public ledger, and how many medicine requests there were.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, func, select, update

from juwei.retention import shred_subjects
from juwei.service import Runtime
from juwei.session import Session
from services.supplies import views

HEALTH_FLAGS = ("regular_medication", "mobility_impaired", "bedridden", "pregnant")


def scrub(runtime: Runtime, session: Session, compound: str) -> dict[str, Any]:
    requests = views.medicine_requests
    counted = dict(
        session.execute(
            select(requests.c.status, func.count()).where(requests.c.compound == compound).group_by(requests.c.status)
        ).all()
    )
    # Cards and prescriptions are sealed under the resident's id, donor names under donor:<compound>:<donor>.
    shredded = shred_subjects(session, [f"{compound}:", f"donor:{compound}:"])
    session.execute(update(requests).where(requests.c.compound == compound).values(prescription=None))
    session.execute(update(views.donations).where(views.donations.c.compound == compound).values(donor_name=None))
    residents = views.residents
    session.execute(
        update(residents).where(residents.c.compound == compound).values(**{flag: false() for flag in HEALTH_FLAGS})
    )
    return {"medicine_requests": counted, "subject_keys_shredded": shredded}
