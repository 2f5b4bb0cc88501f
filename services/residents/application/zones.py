"""Zone status — sealed, controlled, precaution — and the answer to "when can we go out?"."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from contracts.ids import global_id, local_id
from juwei.aggregate import NotFound
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.residents import handlers
from services.residents.domain import Zone, ZoneRules, zone_for
from services.residents.models import DecisionIn
from services.residents.views import buildings, compounds, zones


def compound_rules(session: Session, compound: str) -> ZoneRules:
    """The compound's zone rules as the register shows them (the deployment's when it set none)."""
    row = session.execute(
        select(compounds.c.sealed_days, compounds.c.precaution_days).where(compounds.c.compound == compound)
    ).first()
    if row is None or row.sealed_days is None or row.precaution_days is None:
        return ZoneRules(Zone.sealed_days, Zone.precaution_days)
    return ZoneRules(row.sealed_days, row.precaution_days)


def zone_answer(row: Any, today: date, scope_id: str, rules: ZoneRules | None = None) -> dict[str, Any]:
    """What residents ask: the zone, days since the last case and the earliest date of the next status."""
    rules = rules or ZoneRules(Zone.sealed_days, Zone.precaution_days)
    last = row["last_case_on"] if row else None
    by_authority = bool(row["decided_by_authority"]) if row else False
    view = zone_for(last, max(today, last) if last else today, rules.sealed_days, rules.precaution_days)
    zone = row["zone"] if row and by_authority else view.zone
    return {
        "scope": "building" if ":" in scope_id else "compound",
        "building": local_id(scope_id) if ":" in scope_id else None,
        "zone": zone,
        "last_case_on": last.isoformat() if last else None,
        "days_since_last_case": view.days_since_last_case,
        "next_zone": None if by_authority else view.next_zone,
        "next_change_on": None if by_authority or view.next_change_on is None else view.next_change_on.isoformat(),
        "decided_by_authority": by_authority,
        "reason": row["reason"] if row else "no case recorded",
    }


def _unknown_building(building: str) -> NotFound:
    return NotFound(f"building {building} is not registered", code="building-unknown")


def compound_zones(runtime: Runtime, compound: str, today: date) -> dict[str, Any]:
    """The compound's zone and every building's."""
    with runtime.database.reading() as session:
        rows = {
            row["scope_id"]: row
            for row in session.execute(select(zones).where(zones.c.compound == compound)).mappings()
        }
        every = (
            session.execute(
                select(buildings.c.building).where(buildings.c.compound == compound).order_by(buildings.c.number)
            )
            .scalars()
            .all()
        )
        rules = compound_rules(session, compound)
    return {
        "today": today.isoformat(),
        "compound": zone_answer(rows.get(compound), today, compound, rules),
        "buildings": [zone_answer(rows.get(b), today, b, rules) for b in every],
    }


def building_zone(runtime: Runtime, compound: str, building: str, today: date) -> dict[str, Any]:
    """When can we go out? (one building)"""
    scope_id = global_id(compound, building)
    with runtime.database.reading() as session:
        known = session.execute(select(buildings.c.building).where(buildings.c.building == scope_id)).first()
        if known is None:
            raise _unknown_building(building)
        row = session.execute(select(zones).where(zones.c.scope_id == scope_id)).mappings().first()
        rules = compound_rules(session, compound)
    return {"today": today.isoformat(), **zone_answer(row, today, scope_id, rules)}


def decide(unit: UnitOfWork, caller: Caller, body: DecisionIn) -> None:
    """Set a building's or the compound's zone by the authorities' decision; the compound then follows its
    buildings unless it was decided itself."""
    compound = unit.compound
    caller.require_scope(compound, body.building)
    with unit:
        scope_id = compound
        if body.building is not None:
            scope_id = global_id(compound, body.building)
            known = unit.session.execute(select(buildings.c.building).where(buildings.c.building == scope_id)).first()
            if known is None:
                raise _unknown_building(body.building)
        rules = handlers.zone_rules(unit.runtime, unit.session, compound)
        zone = unit.load_or_new(Zone, scope_id).follow(rules.sealed_days, rules.precaution_days)
        zone.decide(body.zone, body.reason, today=unit.today)
    if body.building is not None:
        with unit.runtime.database.unit_of_work() as session:
            handlers.reconcile_compound(unit.runtime, session, compound, unit.today)
