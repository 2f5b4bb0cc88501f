"""What every supplies route needs: the runtime, today's date, one unit of work per command, ids, roles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import roles as r
from contracts.ids import global_id, local_id
from juwei.aggregate import Aggregate
from juwei.auth import require
from juwei.callers import Caller
from juwei.problems import Problem
from juwei.repository import Repository
from juwei.service import Runtime
from services.supplies.domain import SupplyPolicy
from services.supplies.policy import policy_for
from services.supplies.views import buildings, residents, volunteer_roles

A = TypeVar("A", bound=Aggregate)

__all__ = ["Command", "global_id", "local_id", "runtime_of", "today_of"]

# An id within a compound, as the API speaks it (the bus adds "<compound>:").
LocalIdText = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]
# Item and category names: lower-case words (rice, antigen_kits).
ItemName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]{0,39}$", examples=["rice"])]

StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Logistics = Annotated[Caller, Depends(require(*r.STAFF, r.LOGISTICS_VOLUNTEER))]
Volunteers = Annotated[Caller, Depends(require(*r.STAFF, r.LOGISTICS_VOLUNTEER, r.INFORMATION_OFFICER))]
Officers = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER))]
MedicineReaders = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER, r.SUBDISTRICT_STAFF))]
CardCarriers = Annotated[Caller, Depends(require(*r.STAFF, r.LOGISTICS_VOLUNTEER, r.SUBDISTRICT_STAFF))]
Buyers = Annotated[Caller, Depends(require(*r.STAFF, r.SUBDISTRICT_STAFF))]
CustodyReaders = Annotated[
    Caller, Depends(require(*r.STAFF, r.LOGISTICS_VOLUNTEER, r.INFORMATION_OFFICER, r.SUBDISTRICT_STAFF))
]
# The public ledger: every household of the compound, and everyone working for it.
Compound = Annotated[
    Caller,
    Depends(
        require(
            *r.STAFF,
            r.INFORMATION_OFFICER,
            r.LOGISTICS_VOLUNTEER,
            r.SAMPLING_VOLUNTEER,
            r.SUBDISTRICT_STAFF,
            r.HOUSEHOLD,
        )
    ),
]


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def today_of(request: Request) -> date:
    return runtime_of(request).settings.local_today()


class Command:
    """One command's unit of work: load aggregates, decide, save them all in one transaction."""

    def __init__(self, request: Request, caller: Caller, compound: str) -> None:
        self.runtime = runtime_of(request)
        self.caller = caller
        self.compound = compound
        self.today = today_of(request)
        self._session: Session | None = None
        self._loaded: list[tuple[Repository, Aggregate]] = []

    @property
    def session(self) -> Session:
        assert self._session is not None, "use inside `with command.unit()`"
        return self._session

    @contextmanager
    def unit(self) -> Iterator[Command]:
        with self.runtime.database.unit_of_work() as session:
            self._session = session
            self._loaded = []
            yield self
            for repository, aggregate in self._loaded:
                repository.save(session, aggregate, compound=self.compound, actor=self.caller.key_id)
        self._session = None

    def load(self, kind: type[A], id: str) -> A:
        """Load an aggregate by its district-wide id; it is saved when the unit ends."""
        repository = Repository(self.runtime.store, kind)
        aggregate = repository.load(self.session, id)
        self._loaded.append((repository, aggregate))
        return aggregate

    def policy(self) -> SupplyPolicy:
        return policy_for(self.runtime, self.session, self.compound)


def building_known(session: Session, compound: str, building: str) -> str:
    """The district-wide id of a building of the compound, or 404."""
    building_id = global_id(compound, building)
    if session.execute(select(buildings.c.building).where(buildings.c.building == building_id)).first() is None:
        raise Problem(404, f"building {building} is not registered", "building-unknown")
    return building_id


def resident_row(session: Session, compound: str, resident: str) -> dict:
    row = (
        session.execute(select(residents).where(residents.c.resident == global_id(compound, resident)))
        .mappings()
        .first()
    )
    if row is None or row["erased"]:
        raise Problem(404, f"resident {resident} is not registered", "resident-unknown")
    return dict(row)


def logistics_group(session: Session, building: str) -> dict[str, str | None]:
    """volunteer → shift of one building's logistics group (district-wide ids)."""
    rows = session.execute(
        select(volunteer_roles.c.volunteer, volunteer_roles.c.shift).where(
            volunteer_roles.c.building == building, volunteer_roles.c.role == "logistics"
        )
    )
    return {volunteer: shift for volunteer, shift in rows}


def logistics_leader(session: Session, building: str) -> str | None:
    return session.execute(
        select(volunteer_roles.c.volunteer).where(
            volunteer_roles.c.building == building,
            volunteer_roles.c.role == "logistics",
            volunteer_roles.c.leader.is_(True),
        )
    ).scalar()


def information_officer(session: Session, building: str) -> str | None:
    return session.execute(
        select(volunteer_roles.c.volunteer).where(
            volunteer_roles.c.building == building, volunteer_roles.c.role == "information_officer"
        )
    ).scalar()


def visible_buildings(caller: Caller, wanted: str | None) -> set[str] | None:
    """The local building ids a listing may show: the caller's own buildings, narrowed by ``wanted``."""
    if wanted is not None:
        if caller.buildings is not None and wanted not in caller.buildings:
            raise Problem(403, f"this key may not see building {wanted}", "forbidden")
        return {wanted}
    return set(caller.buildings) if caller.buildings is not None else None
