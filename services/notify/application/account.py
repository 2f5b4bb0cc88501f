"""The daily account on demand: the day's accounts composed now, for every building group of the compound."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from contracts.ids import local_id
from juwei.aggregate import Conflict, Invalid
from juwei.callers import Caller
from juwei.unit_of_work import UnitOfWork
from services.notify.account.sending import compose_accounts
from services.notify.models import DailyAccountSent
from services.notify.views import groups


def send_account(unit: UnitOfWork, caller: Caller, on: date | None) -> DailyAccountSent:
    """Today's (or a past day's) account to every group, once: a repeat, or the set hour later, adds nothing."""
    compound = unit.compound
    day = on or unit.today
    if day > unit.today:
        raise Invalid(f"{day} has not happened yet: an account tells what was done", code="account-future")
    with unit:
        for building in unit.session.execute(select(groups.c.building).where(groups.c.compound == compound)).scalars():
            caller.require_scope(compound, local_id(building))  # every group hears it: a building's key may not
        buildings, composed = compose_accounts(unit.runtime, unit.session, compound, day, actor=caller.key_id)
        if not buildings:
            raise Conflict("the compound has no building groups yet", code="no-building")
    return DailyAccountSent(day=day, buildings=[local_id(b) for b in buildings], composed=composed)
