"""The register of compounds: each compound's subdistrict (街道) and its own zone rules, and the compounds of one
subdistrict side by side. New zone rules move the compound's zones at once (the days are counted anew)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from juwei.callers import Caller
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.residents import handlers
from services.residents.domain import Compound, Zone, ZoneRules
from services.residents.models import CompoundIn, ZoneRulesIn
from services.residents.views import compounds


def _answer(compound: str, row: Any) -> dict[str, Any]:
    own = row is not None and row["sealed_days"] is not None and row["precaution_days"] is not None
    return {
        "compound": compound,
        "subdistrict": row["subdistrict"] if row is not None else None,
        "name": row["name"] if row is not None else None,
        "zone_rules": {
            "sealed_days": row["sealed_days"] if own else Zone.sealed_days,
            "precaution_days": row["precaution_days"] if own else Zone.precaution_days,
            "own": own,
        },
    }


def compound(runtime: Runtime, compound: str) -> dict[str, Any]:
    """One compound as the register shows it (unregistered: no subdistrict, the deployment's rules)."""
    with runtime.database.reading() as session:
        row = session.execute(select(compounds).where(compounds.c.compound == compound)).mappings().first()
    return _answer(compound, row)


def of_subdistrict(runtime: Runtime, caller: Caller, subdistrict: str) -> dict[str, Any]:
    """The compounds registered in a subdistrict, by id."""
    caller.require_subdistrict(subdistrict)
    with runtime.database.reading() as session:
        rows = session.execute(
            select(compounds).where(compounds.c.subdistrict == subdistrict).order_by(compounds.c.compound)
        ).mappings()
        return {"subdistrict": subdistrict, "compounds": [_answer(row["compound"], row) for row in rows]}


def register(unit: UnitOfWork, body: CompoundIn) -> dict[str, Any]:
    """Enter the compound in the register with its subdistrict (or move it to another)."""
    with unit:
        unit.load_or_new(Compound, unit.compound).register(body.subdistrict, body.name)
    return compound(unit.runtime, unit.compound)


def set_zone_rules(unit: UnitOfWork, body: ZoneRulesIn) -> dict[str, Any]:
    """The compound's own zone rules; its zones follow them from now on."""
    rules = ZoneRules(body.sealed_days, body.precaution_days)
    with unit:
        unit.load_or_new(Compound, unit.compound).set_zone_rules(rules)
    with unit.runtime.database.unit_of_work() as session:
        handlers.refresh_compound(unit.runtime, session, unit.compound, unit.today)
    return compound(unit.runtime, unit.compound)
