"""The register's commands: buildings, households and residents registered, changed, moved and erased.

Identity (name, phone, ID-card number) is sealed under the resident's own vault key before it enters an event,
and only in the event's private part: it never reaches Kafka or the feed. Erasure destroys the resident's keys
(crypto-shredding): identity and sealed health flags alike. Each command is one unit of work; a key limited to
some buildings changes only those.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.engine import Row

from contracts.ids import global_id, local_id
from juwei.aggregate import Conflict, Invalid, NotFound
from juwei.callers import Caller
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.residents import views
from services.residents.domain import Building, Household
from services.residents.models import (
    BuildingIn,
    HouseholdIn,
    IdentityIn,
    MoveIn,
    NeedsPatch,
    RepresentativeIn,
    ResidentIn,
)


def household_row(session: Session, compound: str, household: str) -> Row:
    row = session.execute(
        select(views.households).where(views.households.c.household == global_id(compound, household))
    ).first()
    if row is None:
        raise NotFound(f"household {household} is not registered in compound {compound}")
    return row


def resident_row(session: Session, compound: str, resident: str) -> Row:
    row = session.execute(
        select(views.residents).where(views.residents.c.resident == global_id(compound, resident))
    ).first()
    if row is None:
        raise NotFound(f"resident {resident} is not registered in compound {compound}")
    return row


def member_row(session: Session, compound: str, household: str, resident: str) -> Row:
    """The resident, who must live in the household and not be erased."""
    row = resident_row(session, compound, resident)
    if row.household != global_id(compound, household):
        raise NotFound(f"resident {resident} does not live in household {household}")
    if row.erased:
        raise Conflict(f"resident {resident} was erased", code="resident-erased")
    return row


def _field_invalid(field: str, message: str) -> Invalid:
    """Refused like FastAPI's own validation problems, for checks of a body that need the register."""
    return Invalid(
        f"body.{field}: {message}", code="validation", errors=[{"location": ["body", field], "message": message}]
    )


def register_building(unit: UnitOfWork, caller: Caller, body: BuildingIn) -> None:
    caller.require_scope(unit.compound, body.building)
    with unit:
        building = unit.load_or_new(Building, global_id(unit.compound, body.building))
        building.register(body.number, body.floors, body.rooms_per_floor, body.lifts, body.lift_capacity)


def register_household(unit: UnitOfWork, caller: Caller, body: HouseholdIn) -> None:
    caller.require_scope(unit.compound, body.building)
    with unit:
        building = unit.load(Building, global_id(unit.compound, body.building))
        household = unit.load_or_new(Household, global_id(unit.compound, body.household))
        household.register(
            building.id, body.floor, body.room, floors=building.floors, rooms_per_floor=building.rooms_per_floor
        )


def choose_representative(unit: UnitOfWork, caller: Caller, household: str, body: RepresentativeIn) -> Row:
    """The household as it reads afterwards."""
    compound = unit.compound
    with unit:
        home = household_row(unit.session, compound, household)
        caller.require_scope(compound, local_id(home.building))
        unit.load(Household, home.household).choose_representative(global_id(compound, body.resident))
    with unit.runtime.database.reading() as session:
        return household_row(session, compound, household)


def register_resident(unit: UnitOfWork, caller: Caller, household: str, body: ResidentIn) -> None:
    compound = unit.compound
    rid = global_id(compound, body.resident)
    with unit:
        home = household_row(unit.session, compound, household)
        caller.require_scope(compound, local_id(home.building))
        known = unit.session.execute(select(views.residents).where(views.residents.c.resident == rid)).first()
        if known is not None:
            # Sealing again would give an erased resident a new key: an erased id stays retired.
            state = "was erased" if known.erased else f"lives in household {local_id(known.household)}"
            raise Conflict(f"resident {body.resident} {state}", code="resident-exists")
        target = unit.load(Household, home.household)
        token = unit.runtime.vault.seal(unit.session, rid, body.sealed_value())
        target.add_resident(rid, body.birth_year, body.needs(), today=unit.today, identity=token)
        if body.representative:
            target.choose_representative(rid)


def change_needs(unit: UnitOfWork, caller: Caller, household: str, resident: str, body: NeedsPatch) -> None:
    compound = unit.compound
    rid = global_id(compound, resident)
    with unit:
        row = member_row(unit.session, compound, household, resident)
        caller.require_scope(compound, local_id(row.building))
        home = unit.load(Household, row.household)
        wanted = replace(home.members[rid].needs, **body.model_dump(exclude_unset=True, exclude_none=True))
        home.change_needs(rid, wanted, today=unit.today)


def move_resident(unit: UnitOfWork, caller: Caller, household: str, resident: str, body: MoveIn) -> None:
    compound = unit.compound
    with unit:
        row = member_row(unit.session, compound, household, resident)
        caller.require_scope(compound, local_id(row.building))
        destination = household_row(unit.session, compound, body.to_household)
        # Moving someone into a building is editing that building too.
        caller.require_scope(compound, local_id(destination.building))
        if body.to_household == household:
            raise Conflict(f"resident {resident} already lives in household {household}", code="same-household")
        source, target = unit.load(Household, row.household), unit.load(Household, destination.household)
        source.move_out(global_id(compound, resident), target, today=unit.today)


def correct_identity(unit: UnitOfWork, caller: Caller, household: str, resident: str, body: IdentityIn) -> None:
    compound = unit.compound
    rid = global_id(compound, resident)
    with unit:
        row = member_row(unit.session, compound, household, resident)
        caller.require_scope(compound, local_id(row.building))
        if body.id_number and int(body.id_number[6:10]) != row.birth_year:
            raise _field_invalid(
                "id_number", f"its birth year does not match the resident's birth year {row.birth_year}"
            )
        home = unit.load(Household, row.household)
        home.correct_identity(rid, unit.runtime.vault.seal(unit.session, rid, body.sealed_value()))


def erase_resident(unit: UnitOfWork, caller: Caller, resident: str) -> None:
    compound = unit.compound
    rid = global_id(compound, resident)
    with unit:
        row = resident_row(unit.session, compound, resident)
        caller.require_scope(compound, local_id(row.building))
        if not row.erased:  # erasing twice changes nothing more
            unit.load(Household, row.household).erase(rid)
        unit.runtime.vault.shred(unit.session, rid)
