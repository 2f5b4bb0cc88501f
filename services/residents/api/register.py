"""Buildings, households and residents: registration, identity (sealed, masked, audited), erasure, import.

Identity (name, phone, ID-card number) is sealed under the resident's own vault key before it enters an
event, and only in the event's private part: it never reaches Kafka or the feed. Views show it masked to
everyone; ``?reveal=true`` shows it to committee staff, district operators and the building's information
officer. Health flags are shown only to roles with a health grant (``contracts.roles.HEALTH_ROLES``): not to logistics
volunteers. Every read that shows a revealed identity or health flags leaves one row per resident in the
audit of sensitive reads (``juwei.audit``), written in the same transaction that reads it. Erasure destroys
the resident's keys (crypto-shredding): identity and sealed health flags alike.

Staff keys that name buildings read the register of those buildings only (as they edit only those); the
compound's lists of buildings, zones and coverage stay compound-wide.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts.roles import (
    ALL,
    COMMITTEE_STAFF,
    DISTRICT_OPERATOR,
    EXTERNAL_CONSUMER,
    HEALTH_ROLES,
    INFORMATION_OFFICER,
    LOGISTICS_VOLUNTEER,
)
from juwei.aggregate import DomainRuleViolation, NotFound
from juwei.audit import SensitiveRead, purpose_of, record_reads, sensitive_reads_table
from juwei.auth import CompoundId, LocalId, require
from juwei.callers import Caller
from juwei.paging import Limit
from juwei.problems import Problem
from juwei.vault import Vault
from services.residents import importing, views
from services.residents.api.common import Command, global_id, local_id, runtime_of, today_of
from services.residents.domain import Building, Household, Needs, id_number_problem, normalise_phone, phone_problem

router = APIRouter(tags=["register"])

# Who may do what (issue 3, "API and access").
EDITORS = (DISTRICT_OPERATOR, COMMITTEE_STAFF, INFORMATION_OFFICER)
READERS = (*EDITORS, LOGISTICS_VOLUNTEER)
REVEALERS = EDITORS
COMPOUND_ROLES = tuple(role for role in ALL if role != EXTERNAL_CONSUMER)
IDENTITY_FIELDS = ("name", "phone", "id_number")
# An import answer lists at most this many bad cells (and says how many there were).
MAX_LISTED_ERRORS = 2000

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown or revoked one (application/problem+json)"},
    403: {"description": "The key's role or scope does not cover this compound or building"},
    422: {"description": "Invalid input; `errors` names each field (application/problem+json)"},
}


# --- masking ----------------------------------------------------------------------------------------------


def mask_phone(phone: str | None) -> str | None:
    """13800138000 → 138****8000."""
    if not phone:
        return phone
    return phone[:3] + "*" * max(len(phone) - 7, 1) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


def mask_id_number(id_number: str | None) -> str | None:
    """310101199001011234 → 3101**********1234."""
    if not id_number:
        return id_number
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:] if len(id_number) > 8 else "*" * len(id_number)


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧***."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"


# --- request and response models --------------------------------------------------------------------------

ID_PATTERN = importing.LOCAL_ID.pattern  # ids in bodies are the ids in paths (``LocalId``)


class BuildingIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"building": "b12", "number": "12", "floors": 18, "rooms_per_floor": 4, "lifts": 2, "lift_capacity": 8}
            ]
        },
    )

    building: str = Field(pattern=ID_PATTERN, description="Id of the building in the compound")
    number: str = Field(min_length=1, max_length=40, description="The number on the building (楼栋号)")
    floors: int = Field(ge=1, le=importing.MAX_FLOORS)
    rooms_per_floor: int = Field(ge=1, le=importing.MAX_ROOMS_PER_FLOOR)
    lifts: int = Field(ge=0, le=50)
    lift_capacity: int = Field(ge=0, le=100, description="People per lift trip; 0 when there is no lift")


class BuildingOut(BaseModel):
    building: str = Field(examples=["b12"])
    number: str = Field(examples=["12"])
    floors: int = Field(examples=[18])
    rooms_per_floor: int = Field(examples=[4])
    lifts: int = Field(examples=[2])
    lift_capacity: int = Field(examples=[8])
    households: int = Field(0, description="Households registered in the building", examples=[70])
    residents: int = Field(0, description="Residents living there (erased ones not counted)", examples=[183])


class BuildingList(BaseModel):
    buildings: list[BuildingOut]


class HouseholdIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"household": "h12-0302", "building": "b12", "floor": 3, "room": 2}]},
    )

    household: str = Field(pattern=ID_PATTERN)
    building: str = Field(pattern=ID_PATTERN)
    floor: int = Field(ge=1, description="1..floors of the building")
    room: int = Field(ge=1, description="Room on the floor, 1..rooms_per_floor of the building")


class HouseholdOut(BaseModel):
    household: str = Field(examples=["h12-0302"])
    building: str = Field(examples=["b12"])
    floor: int = Field(examples=[3])
    room: int = Field(examples=[2])
    representative: str | None = Field(None, description="The member in the building's group", examples=["r1"])


def _invalid(kind: str, message: str) -> PydanticCustomError:
    # A custom error keeps the message the domain wrote (no "Value error, " prefix).
    return PydanticCustomError(kind, message)


class IdentityIn(BaseModel):
    """Name, phone and ID-card number: sealed under the resident's own key, never published."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "张三", "phone": "13800138000", "id_number": "11010519491231002X"}]},
    )

    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, description="Mainland mobile number: 11 digits starting with 1")
    id_number: str | None = Field(None, description="18-character resident ID-card number (check digit verified)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise _invalid("name", "a name is required")
        return value.strip()

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        phone = normalise_phone(value)
        problem = phone_problem(phone)
        if problem:
            raise _invalid("phone", problem)
        return phone

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        id_number = value.strip().upper()
        problem = id_number_problem(id_number)
        if problem:
            raise _invalid("id_number", problem)
        return id_number

    def sealed_value(self) -> dict[str, str | None]:
        return {"name": self.name, "phone": self.phone, "id_number": self.id_number}


class NeedsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regular_medication: bool = False
    mobility_impaired: bool = False
    bedridden: bool = False
    pregnant: bool = False
    infant: bool = False


class ResidentIn(IdentityIn, NeedsIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "resident": "r1",
                    "name": "张三",
                    "phone": "13800138000",
                    "id_number": "11010519491231002X",
                    "birth_year": 1949,
                    "regular_medication": True,
                    "representative": True,
                }
            ]
        },
    )

    resident: str = Field(pattern=ID_PATTERN)
    birth_year: int = Field(description="Must match the ID-card number's birth year when one is given")
    representative: bool = Field(False, description="Make this resident the household's representative")

    @field_validator("birth_year")
    @classmethod
    def _birth_year(cls, value: int, info: ValidationInfo) -> int:
        id_number = info.data.get("id_number")
        if id_number and int(id_number[6:10]) != value:
            raise _invalid("birth_year", f"does not match the ID-card number's birth year {id_number[6:10]}")
        return value

    def needs(self) -> Needs:
        return Needs(**{flag: getattr(self, flag) for flag in Needs.__dataclass_fields__})


class NeedsPatch(BaseModel):
    """Only the flags sent change; ``elderly`` follows the birth year and cannot be set."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"regular_medication": True}]})

    regular_medication: bool | None = None
    mobility_impaired: bool | None = None
    bedridden: bool | None = None
    pregnant: bool | None = None
    infant: bool | None = None


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to_household": "h12-0501"}]})

    to_household: str = Field(pattern=ID_PATTERN)


class RepresentativeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"resident": "r1"}]})

    resident: str = Field(pattern=ID_PATTERN)


class ResidentOut(BaseModel):
    """A resident as the caller may see them. Identity fields are absent for erased residents, and
    ``id_number`` is absent for logistics volunteers; the health flags (regular_medication,
    mobility_impaired, bedridden, pregnant) are absent for roles without a health grant and for erased
    residents."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "resident": "r1",
                    "household": "h12-0302",
                    "building": "b12",
                    "floor": 3,
                    "room": 2,
                    "birth_year": 1949,
                    "elderly": True,
                    "regular_medication": True,
                    "mobility_impaired": False,
                    "bedridden": False,
                    "pregnant": False,
                    "infant": False,
                    "representative": True,
                    "erased": False,
                    "masked": True,
                    "name": "张*",
                    "phone": "138****8000",
                    "id_number": "1101**********002X",
                }
            ]
        }
    )

    resident: str
    household: str
    building: str
    floor: int
    room: int
    birth_year: int
    elderly: bool
    regular_medication: bool | None = None
    mobility_impaired: bool | None = None
    bedridden: bool | None = None
    pregnant: bool | None = None
    infant: bool
    representative: bool
    erased: bool
    masked: bool = Field(description="False only when the identity was revealed (and the read audited)")
    name: str | None = None
    phone: str | None = None
    id_number: str | None = None


class HouseholdMembers(HouseholdOut):
    members: list[ResidentOut]


class BuildingHouseholds(BaseModel):
    building: str = Field(examples=["b12"])
    revealed: bool = Field(description="Whether identities are unmasked (each such read is audited)")
    households: list[HouseholdMembers]


class IdentityRead(BaseModel):
    seq: int = Field(examples=[41])
    at: datetime = Field(description="When (UTC)", examples=["2022-04-10T08:15:02Z"])
    key_id: str = Field(examples=["3f9c2a1b7d6e5f40"])
    role: str = Field(examples=["information-officer"])
    resident: str = Field(examples=["r1"])
    fields: list[str] = Field(examples=[["name", "phone", "id_number"]])
    request_id: str | None = Field(None, examples=["6c1f0e8d2b4a49f3a1e5c7d9b0a2f4e6"])


class IdentityReads(BaseModel):
    reads: list[IdentityRead]
    next_after: int = Field(description="Pass as `after` for the next page")


class TallyOut(BaseModel):
    created: int = 0
    changed: int = 0
    unchanged: int = 0


class ImportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "residents",
                    "rows": 5000,
                    "buildings": {"created": 0, "changed": 0, "unchanged": 25},
                    "households": {"created": 2000, "changed": 0, "unchanged": 0},
                    "residents": {"created": 5000, "changed": 0, "unchanged": 0},
                    "changes": {"moved": 0, "needs_changed": 0, "identity_corrected": 0, "representative_chosen": 2000},
                    "events": 9000,
                }
            ]
        }
    )

    kind: Literal["buildings", "residents"]
    rows: int
    buildings: TallyOut
    households: TallyOut
    residents: TallyOut
    changes: dict[str, int] = Field(description="Change events recorded, by kind")
    events: int = Field(description="Events appended; 0 when the file was imported before")


# --- reading the register ---------------------------------------------------------------------------------


def _field_problem(field: str, message: str) -> Problem:
    """A 422 shaped like FastAPI's own validation problems, for checks that need the register."""
    return Problem(
        422, f"body.{field}: {message}", "validation", errors=[{"location": ["body", field], "message": message}]
    )


def _household(session: Session, compound: str, household: str) -> Row:
    row = session.execute(
        select(views.households).where(views.households.c.household == global_id(compound, household))
    ).first()
    if row is None:
        raise NotFound(f"household {household} is not registered in compound {compound}")
    return row


def _resident(session: Session, compound: str, resident: str) -> Row:
    row = session.execute(
        select(views.residents).where(views.residents.c.resident == global_id(compound, resident))
    ).first()
    if row is None:
        raise NotFound(f"resident {resident} is not registered in compound {compound}")
    return row


def _member(session: Session, compound: str, household: str, resident: str) -> Row:
    """The resident, who must live in the household and not be erased."""
    row = _resident(session, compound, resident)
    if row.household != global_id(compound, household):
        raise NotFound(f"resident {resident} does not live in household {household}")
    if row.erased:
        raise DomainRuleViolation(f"resident {resident} was erased", code="resident-erased")
    return row


def _require_reader(caller: Caller, compound: str, building: str) -> None:
    # Everyone reads the register of the buildings on their key, staff too (a key without buildings: all).
    caller.require_scope(compound, local_id(building))


def _disclosure(caller: Caller, reveal: bool) -> bool:
    """Whether ID-card numbers may be listed at all; refuses a reveal to a role that may not see identity."""
    if reveal and caller.role not in REVEALERS:
        raise Problem(403, f"role {caller.role} may not see identities unmasked", "reveal-forbidden")
    return caller.role != LOGISTICS_VOLUNTEER


def _views(
    session: Session,
    vault: Vault,
    residents: Sequence[Row],
    households: dict[str, Row],
    *,
    reveal: bool,
    id_numbers: bool,
    health: bool,
) -> list[ResidentOut]:
    """Residents as the caller may see them; identities are unsealed in one batch."""
    identities = vault.unseal_many(session, {r.resident: r.identity for r in residents if not r.erased})
    out: list[ResidentOut] = []
    for row in residents:
        home = households[row.household]
        item: dict[str, Any] = {
            "resident": local_id(row.resident),
            "household": local_id(row.household),
            "building": local_id(row.building),
            "floor": home.floor,
            "room": home.room,
            "birth_year": row.birth_year,
            **{flag: bool(getattr(row, flag)) for flag in views.FLAGS if flag not in views.HEALTH},
            "representative": home.representative == row.resident,
            "erased": bool(row.erased),
            "masked": not reveal,
        }
        if health and not row.erased:
            item.update({flag: bool(getattr(row, flag)) for flag in views.HEALTH})
        if not row.erased:
            identity = identities.get(row.resident) or {}
            item["name"] = identity.get("name") if reveal else mask_name(identity.get("name"))
            item["phone"] = identity.get("phone") if reveal else mask_phone(identity.get("phone"))
            if id_numbers:
                item["id_number"] = identity.get("id_number") if reveal else mask_id_number(identity.get("id_number"))
        out.append(ResidentOut(**item))
    return out


def _reads(compound: str, shown: Sequence[ResidentOut], *, identity: bool, health: bool) -> list[SensitiveRead]:
    """The sensitive reads of residents just shown: unmasked identity, health flags (none of the erased)."""
    reads = []
    for resident in shown:
        subject, building = global_id(compound, resident.resident), global_id(compound, resident.building)
        if identity and not resident.masked:
            fields = tuple(f for f in IDENTITY_FIELDS if getattr(resident, f, None))
            reads.append(SensitiveRead(subject, "identity", fields, building))
        if health and not resident.erased:
            reads.append(SensitiveRead(subject, "health", views.HEALTH, building))
    return reads


def _show(
    request: Request,
    caller: Caller,
    compound: str,
    query: Any,
    *,
    reveal: bool,
    households: Sequence[Row] = (),
    purpose: str | None = None,
) -> list[ResidentOut]:
    """Run ``query`` over residents and show them. A read (``purpose`` given) that reveals identities or shows
    health flags is audited in the same transaction; a command's answer echoes what its caller just wrote."""
    runtime = runtime_of(request)
    id_numbers = _disclosure(caller, reveal)
    health = caller.role in HEALTH_ROLES
    audited = reveal or (purpose is not None and health)
    with runtime.database.unit_of_work() if audited else runtime.database.reading() as session:
        residents = session.execute(query).all()
        homes = {h.household: h for h in households}
        missing = sorted({r.household for r in residents} - homes.keys())
        if missing:
            homes.update(
                (h.household, h)
                for h in session.execute(select(views.households).where(views.households.c.household.in_(missing)))
            )
        shown = _views(session, runtime.vault, residents, homes, reveal=reveal, id_numbers=id_numbers, health=health)
        if audited:
            reads = _reads(compound, shown, identity=reveal, health=purpose is not None and health)
            record_reads(session, request, caller, compound, reads, purpose or "revealed in the answer to a change")
    return shown


def _resident_out(request: Request, caller: Caller, compound: str, resident: str) -> ResidentOut:
    query = select(views.residents).where(views.residents.c.resident == global_id(compound, resident))
    return _show(request, caller, compound, query, reveal=False)[0]


def _household_out(row: Row) -> HouseholdOut:
    return HouseholdOut(
        household=local_id(row.household),
        building=local_id(row.building),
        floor=row.floor,
        room=row.room,
        representative=local_id(row.representative) if row.representative else None,
    )


# --- buildings --------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/buildings",
    status_code=201,
    response_model=BuildingOut,
    summary="Register a building",
    responses={**PROBLEM_RESPONSES, 409: {"description": "The building is already registered"}},
)
def register_building(
    compound: CompoundId,
    body: BuildingIn,
    request: Request,
    caller: Annotated[Caller, Depends(require(COMMITTEE_STAFF, DISTRICT_OPERATOR))],
) -> BuildingOut:
    caller.require_scope(compound, body.building)
    with Command(request, caller, compound).unit() as command:
        building = command.load(Building, body.building)
        building.register(body.number, body.floors, body.rooms_per_floor, body.lifts, body.lift_capacity)
    return BuildingOut(**body.model_dump())


@router.get(
    "/compounds/{compound}/buildings",
    response_model=BuildingList,
    summary="The compound's buildings, with how many households and residents each has",
    responses=PROBLEM_RESPONSES,
)
def list_buildings(
    compound: CompoundId, request: Request, caller: Annotated[Caller, Depends(require(*COMPOUND_ROLES))]
) -> BuildingList:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        buildings = session.execute(select(views.buildings).where(views.buildings.c.compound == compound)).all()
        households = dict(
            session.execute(
                select(views.households.c.building, func.count())
                .where(views.households.c.compound == compound)
                .group_by(views.households.c.building)
            ).all()
        )
        residents = dict(
            session.execute(
                select(views.residents.c.building, func.count())
                .where(views.residents.c.compound == compound, views.residents.c.erased.is_(False))
                .group_by(views.residents.c.building)
            ).all()
        )
    out = [
        BuildingOut(
            building=local_id(row.building),
            number=row.number,
            floors=row.floors,
            rooms_per_floor=row.rooms_per_floor,
            lifts=row.lifts,
            lift_capacity=row.lift_capacity,
            households=households.get(row.building, 0),
            residents=residents.get(row.building, 0),
        )
        for row in buildings
    ]
    return BuildingList(buildings=sorted(out, key=lambda b: _natural(b.number)))


def _natural(text: str) -> list[Any]:
    """Building 2 before building 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@router.get(
    "/compounds/{compound}/buildings/{building}/households",
    response_model=BuildingHouseholds,
    response_model_exclude_unset=True,
    summary="Households of a building with their members (masked unless revealed; reveals are audited)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such building"}},
)
def building_households(
    compound: CompoundId,
    building: LocalId,
    request: Request,
    caller: Annotated[Caller, Depends(require(*READERS))],
    reveal: Annotated[
        bool, Query(description="Show name, phone and ID number unmasked (staff and the information officer)")
    ] = False,
) -> BuildingHouseholds:
    gid = global_id(compound, building)
    _require_reader(caller, compound, gid)
    _disclosure(caller, reveal)
    purpose = purpose_of(request, f"register: households of building {building}")
    with runtime_of(request).database.reading() as session:
        if session.execute(select(views.buildings.c.building).where(views.buildings.c.building == gid)).first() is None:
            raise NotFound(f"building {building} is not registered in compound {compound}")
        homes = session.execute(
            select(views.households)
            .where(views.households.c.building == gid)
            .order_by(views.households.c.floor, views.households.c.room, views.households.c.household)
        ).all()
    query = select(views.residents).where(views.residents.c.building == gid).order_by(views.residents.c.resident)
    members = _show(request, caller, compound, query, reveal=reveal, households=homes, purpose=purpose)
    by_household: dict[str, list[ResidentOut]] = {}
    for member in members:
        by_household.setdefault(member.household, []).append(member)
    return BuildingHouseholds(
        building=building,
        revealed=reveal,
        households=[
            HouseholdMembers(
                **_household_out(home).model_dump(), members=by_household.get(local_id(home.household), [])
            )
            for home in homes
        ],
    )


# --- households -------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/households",
    status_code=201,
    response_model=HouseholdOut,
    summary="Register a household in one room of a building",
    responses={
        **PROBLEM_RESPONSES,
        404: {"description": "No such building"},
        409: {"description": "The household is already registered"},
    },
)
def register_household(
    compound: CompoundId,
    body: HouseholdIn,
    request: Request,
    caller: Annotated[Caller, Depends(require(*EDITORS))],
) -> HouseholdOut:
    caller.require_scope(compound, body.building)
    with Command(request, caller, compound).unit() as command:
        building = command.load(Building, body.building)
        if not building.exists:
            raise NotFound(f"building {body.building} is not registered in compound {compound}")
        household = command.load(Household, body.household)
        household.register(
            building.id, body.floor, body.room, floors=building.floors, rooms_per_floor=building.rooms_per_floor
        )
    return HouseholdOut(**body.model_dump())


@router.post(
    "/compounds/{compound}/households/{household}/representative",
    response_model=HouseholdOut,
    summary="Choose the household's representative (the member in the building's group)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such household"}, 409: {"description": "Not a member"}},
)
def choose_representative(
    compound: CompoundId,
    household: LocalId,
    body: RepresentativeIn,
    request: Request,
    caller: Annotated[Caller, Depends(require(*EDITORS))],
) -> HouseholdOut:
    caller.require_scope(compound)
    with Command(request, caller, compound).unit() as command:
        assert command.session is not None
        home = _household(command.session, compound, household)
        caller.require_scope(compound, local_id(home.building))
        command.load(Household, household).choose_representative(global_id(compound, body.resident))
    with runtime_of(request).database.reading() as session:
        return _household_out(_household(session, compound, household))


# --- residents --------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/households/{household}/residents",
    status_code=201,
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Register a resident in a household (identity sealed, never published)",
    responses={
        **PROBLEM_RESPONSES,
        404: {"description": "No such household"},
        409: {"description": "The resident is already registered (or was erased)"},
    },
)
def register_resident(
    compound: CompoundId,
    household: LocalId,
    body: ResidentIn,
    request: Request,
    caller: Annotated[Caller, Depends(require(*EDITORS))],
) -> ResidentOut:
    caller.require_scope(compound)
    rid = global_id(compound, body.resident)
    runtime = runtime_of(request)
    with Command(request, caller, compound).unit() as command:
        session = command.session
        assert session is not None
        home = _household(session, compound, household)
        caller.require_scope(compound, local_id(home.building))
        known = session.execute(select(views.residents).where(views.residents.c.resident == rid)).first()
        if known is not None:
            # Sealing again would give an erased resident a new key: an erased id stays retired.
            state = "was erased" if known.erased else f"lives in household {local_id(known.household)}"
            raise DomainRuleViolation(f"resident {body.resident} {state}", code="resident-exists")
        target = command.load(Household, household)
        token = runtime.vault.seal(session, rid, body.sealed_value())
        target.add_resident(rid, body.birth_year, body.needs(), today=command.today, identity=token)
        if body.representative:
            target.choose_representative(rid)
    return _resident_out(request, caller, compound, body.resident)


@router.patch(
    "/compounds/{compound}/households/{household}/residents/{resident}/needs",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Change a resident's needs flags (only the flags sent)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident in this household"}},
)
def change_needs(
    compound: CompoundId,
    household: LocalId,
    resident: LocalId,
    body: NeedsPatch,
    request: Request,
    caller: Annotated[Caller, Depends(require(*EDITORS))],
) -> ResidentOut:
    caller.require_scope(compound)
    rid = global_id(compound, resident)
    with Command(request, caller, compound).unit() as command:
        assert command.session is not None
        row = _member(command.session, compound, household, resident)
        caller.require_scope(compound, local_id(row.building))
        home = command.load(Household, household)
        wanted = replace(home.members[rid].needs, **body.model_dump(exclude_unset=True, exclude_none=True))
        home.change_needs(rid, wanted, today=command.today)
    return _resident_out(request, caller, compound, resident)


@router.post(
    "/compounds/{compound}/households/{household}/residents/{resident}/move",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Move a resident to another household (both households record their half)",
    responses={
        **PROBLEM_RESPONSES,
        404: {"description": "No such resident or household"},
        409: {"description": "Already living there"},
    },
)
def move_resident(
    compound: CompoundId,
    household: LocalId,
    resident: LocalId,
    body: MoveIn,
    request: Request,
    caller: Annotated[Caller, Depends(require(*EDITORS))],
) -> ResidentOut:
    caller.require_scope(compound)
    with Command(request, caller, compound).unit() as command:
        session = command.session
        assert session is not None
        row = _member(session, compound, household, resident)
        caller.require_scope(compound, local_id(row.building))
        destination = _household(session, compound, body.to_household)
        # Moving someone into a building is editing that building too.
        caller.require_scope(compound, local_id(destination.building))
        if body.to_household == household:
            raise DomainRuleViolation(
                f"resident {resident} already lives in household {household}", code="same-household"
            )
        source, target = command.load(Household, household), command.load(Household, body.to_household)
        source.move_out(global_id(compound, resident), target, today=command.today)
    return _resident_out(request, caller, compound, resident)


@router.put(
    "/compounds/{compound}/households/{household}/residents/{resident}/identity",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Correct a resident's name, phone or ID number (sealed again, never published)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident in this household"}},
)
def correct_identity(
    compound: CompoundId,
    household: LocalId,
    resident: LocalId,
    body: IdentityIn,
    request: Request,
    caller: Annotated[Caller, Depends(require(*EDITORS))],
) -> ResidentOut:
    caller.require_scope(compound)
    rid = global_id(compound, resident)
    runtime = runtime_of(request)
    with Command(request, caller, compound).unit() as command:
        session = command.session
        assert session is not None
        row = _member(session, compound, household, resident)
        caller.require_scope(compound, local_id(row.building))
        if body.id_number and int(body.id_number[6:10]) != row.birth_year:
            raise _field_problem(
                "id_number", f"its birth year does not match the resident's birth year {row.birth_year}"
            )
        home = command.load(Household, household)
        home.correct_identity(rid, runtime.vault.seal(session, rid, body.sealed_value()))
    return _resident_out(request, caller, compound, resident)


@router.delete(
    "/compounds/{compound}/residents/{resident}",
    status_code=204,
    response_class=Response,
    summary="Erase a resident: their identity becomes unreadable everywhere (crypto-shredding)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident"}},
)
def erase_resident(
    compound: CompoundId,
    resident: LocalId,
    request: Request,
    caller: Annotated[Caller, Depends(require(COMMITTEE_STAFF, DISTRICT_OPERATOR))],
) -> Response:
    caller.require_scope(compound)
    rid = global_id(compound, resident)
    runtime = runtime_of(request)
    with Command(request, caller, compound).unit() as command:
        session = command.session
        assert session is not None
        row = _resident(session, compound, resident)
        caller.require_scope(compound, local_id(row.building))
        if not row.erased:  # erasing twice changes nothing more
            command.load(Household, local_id(row.household)).erase(rid)
        runtime.vault.shred(session, rid)
    return Response(status_code=204)


@router.get(
    "/compounds/{compound}/residents/{resident}",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="One resident (masked unless revealed; reveals are audited)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident"}},
)
def get_resident(
    compound: CompoundId,
    resident: LocalId,
    request: Request,
    caller: Annotated[Caller, Depends(require(*READERS))],
    reveal: Annotated[bool, Query(description="Show identity unmasked (staff and the information officer)")] = False,
) -> ResidentOut:
    caller.require_scope(compound)
    _disclosure(caller, reveal)
    purpose = purpose_of(request, "register: one resident")
    with runtime_of(request).database.reading() as session:
        row = _resident(session, compound, resident)
    _require_reader(caller, compound, row.building)
    query = select(views.residents).where(views.residents.c.resident == row.resident)
    return _show(request, caller, compound, query, reveal=reveal, purpose=purpose)[0]


@router.get(
    "/compounds/{compound}/identity-reads",
    response_model=IdentityReads,
    summary="The audit log of unmasked identity reads (PIPL accountability)",
    responses=PROBLEM_RESPONSES,
)
def identity_reads(
    compound: CompoundId,
    request: Request,
    caller: Annotated[Caller, Depends(require(COMMITTEE_STAFF, DISTRICT_OPERATOR))],
    resident: Annotated[str | None, Query(pattern=ID_PATTERN, description="Only reads of this resident")] = None,
    after: Annotated[int, Query(ge=0, description="`seq` of the last read already seen")] = 0,
    limit: Limit = 100,
) -> IdentityReads:
    caller.require_scope(compound)
    table = sensitive_reads_table
    query = select(table).where(table.c.compound == compound, table.c.kind == "identity", table.c.seq > after)
    if resident is not None:
        query = query.where(table.c.subject == global_id(compound, resident))
    if caller.buildings is not None:  # staff of some buildings account for the reads in theirs
        query = query.where(table.c.building.in_(sorted(global_id(compound, b) for b in caller.buildings)))
    with runtime_of(request).database.reading() as session:
        rows = session.execute(query.order_by(table.c.seq).limit(limit)).all()
    reads = [
        IdentityRead(
            seq=row.seq,
            at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),  # SQLite keeps no time zone
            key_id=row.key_id,
            role=row.role,
            resident=local_id(row.subject),
            fields=[f for f in row.fields.split(",") if f],
            request_id=row.request_id,
        )
        for row in rows
    ]
    return IdentityReads(reads=reads, next_after=rows[-1].seq if rows else after)


# --- bulk import ------------------------------------------------------------------------------------------

IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "The spreadsheet: CSV (UTF-8 or GB18030) or XLSX (first sheet), the first row naming the columns. "
            f"Residents: {', '.join(importing.IMPORT_COLUMNS)}. Buildings: {', '.join(importing.BUILDING_COLUMNS)}. "
            f"At most {importing.MAX_BYTES // (1024 * 1024)} MB and {importing.MAX_ROWS} rows."
        ),
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "building,number,floors,rooms_per_floor,lifts,lift_capacity\nb1,1,18,4,2,8\n",
            },
            importing.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _upload(request: Request) -> tuple[bytes, str | None, str | None]:
    """The uploaded file (raw body or the file part of a form), refused past the size limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > importing.MAX_BYTES + 64 * 1024:  # room for a form's boundaries
            raise Problem(413, f"the file is larger than {importing.MAX_BYTES} bytes", "body-too-large")
    media_type = request.headers.get("content-type", "")
    if media_type.startswith("multipart/form-data"):
        try:
            form = await MultiPartParser(request.headers, _once(bytes(body)), max_files=1, max_fields=10).parse()
        except MultiPartException as exc:
            raise Problem(400, f"the form cannot be read: {exc.message}", "bad-form") from None
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise Problem(422, "send the spreadsheet as the form's file part (`file`)", "no-file")
        content = await files[0].read()
        return content, files[0].filename, files[0].content_type
    if not body:
        raise Problem(422, "send the spreadsheet as the body (text/csv or XLSX) or as a form's file part", "no-file")
    return bytes(body), None, media_type


def _require_buildings(caller: Caller, compound: str, buildings: set[str]) -> None:
    outside = sorted(b for b in buildings if not caller.may_act_on(compound, b))
    if outside:
        raise Problem(403, f"this key may not act on buildings {', '.join(outside)} of compound {compound}")


def _import(
    request: Request,
    caller: Caller,
    compound: str,
    kind: Literal["buildings", "residents"],
    content: bytes,
    filename: str | None,
    media_type: str | None,
) -> ImportOut:
    runtime = runtime_of(request)
    try:
        sheet = importing.read_sheet(content, filename, media_type)
        # Every row is checked before the write transaction starts: a rejected file holds no lock.
        if kind == "buildings":
            buildings = importing.parse_buildings(sheet)
            _require_buildings(caller, compound, {row.building for row in buildings})
            with runtime.database.unit_of_work() as session:
                result = importing.import_buildings(session, runtime.store, compound, buildings, actor=caller.key_id)
        else:
            residents = importing.validate_resident_rows(sheet, today_of(request))
            _require_buildings(caller, compound, {row.building for row in residents})
            with runtime.database.unit_of_work() as session:
                result = importing.import_residents(
                    session,
                    runtime.store,
                    runtime.vault,
                    compound,
                    residents,
                    today=today_of(request),
                    actor=caller.key_id,
                )
    except importing.UnreadableFile as exc:
        raise Problem(exc.status, str(exc), exc.code) from None
    except importing.ImportRejected as exc:
        raise Problem(
            422,
            str(exc),
            "import-rejected",
            errors=[asdict(error) for error in exc.errors[:MAX_LISTED_ERRORS]],
            error_count=len(exc.errors),
        ) from None
    return ImportOut(
        kind=kind,
        rows=result.rows,
        buildings=TallyOut(**asdict(result.buildings)),
        households=TallyOut(**asdict(result.households)),
        residents=TallyOut(**asdict(result.residents)),
        changes=result.changes,
        events=result.events,
    )


@router.post(
    "/compounds/{compound}/import",
    response_model=ImportOut,
    summary="Import buildings, or households and residents, from a CSV or XLSX sheet (all rows or none)",
    openapi_extra=IMPORT_BODY,
    responses={
        **PROBLEM_RESPONSES,
        413: {"description": "The file is larger than 10 MB"},
        415: {"description": "An old .xls file"},
        422: {"description": "Bad rows (each listed with line, column and reason: nothing imported), or too many"},
    },
)
async def import_sheet(
    compound: CompoundId,
    request: Request,
    caller: Annotated[Caller, Depends(require(COMMITTEE_STAFF, DISTRICT_OPERATOR))],
    kind: Annotated[
        Literal["buildings", "residents"], Query(description="What the sheet holds: import buildings first")
    ],
) -> ImportOut:
    caller.require_scope(compound)
    content, filename, media_type = await _upload(request)
    return await run_in_threadpool(_import, request, caller, compound, kind, content, filename, media_type)
