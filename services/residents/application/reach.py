"""Households that hear no building group (no smartphone, nobody in the group): staff or the building's
information officer mark them, and notify puts them on that officer's call list for every urgent message."""

from __future__ import annotations

from contracts.ids import local_id
from juwei.callers import Caller
from juwei.unit_of_work import UnitOfWork
from services.residents.application.register import household_row
from services.residents.domain import Household
from services.residents.models import ReachOut


def mark_unreachable(unit: UnitOfWork, caller: Caller, household: str, reason: str) -> ReachOut:
    """Mark the household (marking it again with the same reason records nothing)."""
    return _change(unit, caller, household, reason)


def mark_reachable(unit: UnitOfWork, caller: Caller, household: str) -> ReachOut:
    """Clear the mark (clearing an unmarked household records nothing)."""
    return _change(unit, caller, household, None)


def _change(unit: UnitOfWork, caller: Caller, household: str, reason: str | None) -> ReachOut:
    compound = unit.compound
    with unit:
        home = household_row(unit.session, compound, household)
        caller.require_scope(compound, local_id(home.building))
        aggregate = unit.load(Household, home.household)
        if reason is None:
            aggregate.mark_reachable()
        else:
            aggregate.mark_unreachable(reason)
        state = aggregate.unreachable
    return ReachOut(household=household, building=local_id(home.building), unreachable=state is not None, reason=state)
