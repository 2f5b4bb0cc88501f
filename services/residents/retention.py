"""Retention in the residents service: identities shredded, health flags blanked, the counts kept.

What stays: buildings, households, how many residents lived in each building and how many had each need,
birth years (ages) and the audit log of identity reads (who looked, never what they saw).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, false, func, select, update

from contracts.ids import local_id
from juwei.retention import shred_subjects
from juwei.service import Runtime
from juwei.session import Session
from services.residents import views
from services.residents.application.zones import compound_rules, zone_answer
from services.residents.rosters import medicine_asked

# Needs that are health data; ``elderly`` and ``infant`` follow from the birth year and stay.
HEALTH_FLAGS = ("regular_medication", "mobility_impaired", "bedridden", "pregnant")


def scrub(runtime: Runtime, session: Session, compound: str) -> dict[str, Any]:
    table = views.residents
    mine = (table.c.compound == compound) & (table.c.erased.is_(False))
    counted = session.execute(select(table.c.building, func.count()).where(mine).group_by(table.c.building)).all()
    per_building = {local_id(building): int(count) for building, count in counted}
    needs = {
        flag: int(session.execute(select(func.count()).where(mine, getattr(table.c, flag).is_(True))).scalar() or 0)
        for flag in HEALTH_FLAGS
    }
    shredded = shred_subjects(session, [f"{compound}:"])
    blanked = session.execute(
        update(table)
        .where(table.c.compound == compound)
        .values(identity=None, **{flag: false() for flag in HEALTH_FLAGS})
    ).rowcount
    # Whom the medicine survey asked hints at who takes regular medication: gone with the health flags.
    asked = session.execute(delete(medicine_asked).where(medicine_asked.c.compound == compound)).rowcount
    return {
        "medicine_asked_removed": int(asked or 0),
        "residents": sum(per_building.values()),
        "residents_per_building": per_building,
        "needs": needs,
        "subject_keys_shredded": shredded,
        "rows_blanked": int(blanked or 0),
    }


def lockdown_over(runtime: Runtime, compound: str) -> tuple[bool, str]:
    """Whether the compound and each of its buildings are at "precaution" today (the lockdown's end)."""
    today = runtime.settings.local_today()
    with runtime.database.reading() as session:
        known = session.execute(select(views.buildings.c.building).where(views.buildings.c.compound == compound))
        scopes = [compound, *known.scalars()]
        rows = {
            row["scope_id"]: row
            for row in session.execute(select(views.zones).where(views.zones.c.compound == compound)).mappings()
        }
        rules = compound_rules(session, compound)
    if len(scopes) == 1:
        return False, f"compound {compound} has no buildings in the register"
    still = []
    for scope in scopes:
        zone = zone_answer(rows.get(scope), today, scope, rules)["zone"]  # what "when can we go out?" answers
        if zone != "precaution":
            still.append(f"{scope} is {zone}")
    if still:
        return False, "the lockdown is not over: " + ", ".join(still)
    return True, f"compound {compound} and its {len(scopes) - 1} buildings are at precaution"
