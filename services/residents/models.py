"""What the residents service's HTTP API takes and gives: request and response models, apart from the routes.

Bodies are checked here (ids, ranges, phone and ID-card numbers) before a use case sees them; ids in bodies
are the ids in paths, local to the compound.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from services.residents import importing
from services.residents.domain import Needs, id_number_problem, normalise_phone, phone_problem

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


class ReachIn(BaseModel):
    """Why the household hears no building group: its officer carries urgent messages to it instead."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "no_smartphone"}]})

    reason: Literal["no_smartphone", "not_in_group"] = "no_smartphone"


class ReachOut(BaseModel):
    household: str = Field(examples=["b12-0302"])
    building: str = Field(examples=["b12"])
    unreachable: bool = Field(description="true while urgent messages go on the officer's call list")
    reason: Literal["no_smartphone", "not_in_group"] | None = None


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


# --- teams ------------------------------------------------------------------------------------------------

LocalIdText = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


class StaffBuildingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"buildings": ["1", "2", "3", "4"]}]})
    buildings: list[LocalIdText] = Field(max_length=100, description="Every building this member covers from now on")


class VolunteerIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"volunteer": "v-0701", "building": "7", "skills": ["spreadsheets"]}]},
    )
    volunteer: LocalIdText
    building: LocalIdText
    skills: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=20)


class RoleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "logistics", "shift": "A", "leader": True}]}
    )
    role: Literal["information_officer", "logistics", "sampling_point"]
    shift: Literal["A", "B"] | None = None
    leader: bool = False


# --- zones ------------------------------------------------------------------------------------------------


class DecisionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"building": "12", "zone": "controlled", "reason": "街道通知 2022-04-20 第3号"}]
        },
    )
    building: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] | None = Field(
        None, description="A building, or none for the whole compound"
    )
    zone: Literal["sealed", "controlled", "precaution"]
    reason: str = Field(min_length=1, max_length=500, description="The authorities' decision, e.g. its notice")


class HeadingOut(BaseModel):
    position: int = Field(description="The column, 1 for column A", examples=[1])
    heading: str = Field(description="The heading as written in the sheet", examples=["楼号"])
    field: str | None = Field(
        description="The import's field it fills, or null when not recognised", examples=["building"]
    )
    chosen: bool = Field(False, description="Named by the request's `mapping` rather than recognised")
    kept: bool = Field(True, description="False for fields recognised but not kept (sex, note) and for null")


class SampleRowOut(BaseModel):
    line: int = Field(description="The row's line in the sheet", examples=[2])
    cells: list[str] = Field(description="One cell per entry of `headings`, in their order (phone and ID masked)")


class PreviewOut(BaseModel):
    kind: Literal["buildings", "residents"]
    headings: list[HeadingOut]
    fields: list[str] = Field(description="Every field the import takes (the values `mapping` may name)")
    required: list[list[str]] = Field(description="Required fields; each entry is satisfied by any one of its fields")
    missing: list[str] = Field(description="Required fields no heading fills (the first of each entry)")
    unknown: list[str] = Field(description="Headings not recognised and not mapped: ignored on import")
    ready: bool = Field(description="True when the import can read every required field")
    rows: int = Field(description="Rows with data (blank lines skipped)")
    sample: list[SampleRowOut]


# --- answers of the team and zone routes (strict: a key the model does not name is a bug, not a leak) ---------

ZoneName = Literal["sealed", "controlled", "precaution"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaffBuildingsOut(Answer):
    staff: str
    buildings: list[str]


class CoverageOut(Answer):
    staff: dict[str, list[str]] = Field(description="Each staff member's buildings")
    uncovered: list[str] = Field(description="Buildings no staff member covers")
    overloaded: dict[str, int] = Field(description="Staff covering more than `max_buildings`, with how many")
    max_buildings: int


class VolunteerOut(Answer):
    volunteer: str
    building: str


class VolunteerFound(VolunteerOut):
    skills: list[str]


class VolunteersOut(Answer):
    volunteers: list[VolunteerFound]


class StoodDownOut(VolunteerOut):
    released: list[str] = Field(description="The roles they held in their building, now released")
    stood_down: Literal[True]


class RoleOut(Answer):
    volunteer: str
    role: str
    replaces: str | None = Field(description="The information officer replaced, if any")


class RoleReleasedOut(Answer):
    volunteer: str
    role: str
    released: Literal[True]


class LogisticsMember(Answer):
    volunteer: str
    shift: str | None
    leader: bool


class LogisticsShifts(Answer):
    A: list[LogisticsMember]
    B: list[LogisticsMember]


class BuildingTeamOut(Answer):
    building: str
    information_officer: str | None
    logistics: LogisticsShifts
    sampling_point: list[str] = Field(description="Volunteers serving at the building's sampling point")


class ZoneOut(Answer):
    scope: Literal["building", "compound"]
    building: str | None
    zone: ZoneName
    last_case_on: date | None
    days_since_last_case: int | None
    next_zone: ZoneName | None = Field(description="None when decided by the authorities, or already precaution")
    next_change_on: date | None = Field(description="The earliest day of the next zone, if no new case")
    decided_by_authority: bool
    reason: str


class BuildingZoneOut(ZoneOut):
    today: date


class CompoundZonesOut(Answer):
    today: date
    compound: ZoneOut
    buildings: list[ZoneOut]


class DecisionOut(Answer):
    building: str | None
    zone: ZoneName
    decided_by_authority: Literal[True]


# --- the register of compounds -------------------------------------------------------------------------------


class CompoundIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"subdistrict": "s1", "name": "石泉小区"}]}
    )
    subdistrict: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="The subdistrict (街道) it belongs to")
    name: str = Field(min_length=1, max_length=100)


class ZoneRulesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"sealed_days": 7, "precaution_days": 14}]}
    )
    sealed_days: int = Field(ge=1, le=364, description="Days without a case before a sealed zone is controlled")
    precaution_days: int = Field(ge=2, le=365, description="Days without a case before a zone is precaution")


class ZoneRulesOut(Answer):
    sealed_days: int
    precaution_days: int
    own: bool = Field(description="False: the deployment's rules, the compound set none of its own")


class CompoundOut(Answer):
    compound: str
    subdistrict: str | None = Field(description="None: not yet registered")
    name: str | None
    zone_rules: ZoneRulesOut


class SubdistrictCompoundsOut(Answer):
    subdistrict: str
    compounds: list[CompoundOut]
