"""The published event catalogue of the residents service (topic ``juwei.residents``).

Privacy (PIPL): these payloads go on Kafka and out of the feed, so they carry ids and the facts other services
need (building, floor, room, household, roles, zones, whether someone is elderly or an infant) and never a
name, a phone number, an ID-card number or a birth year: identity stays inside the residents service. The
health flags (regular medication, mobility impaired, bedridden, pregnant) travel sealed in ``health`` under
the resident's own key for that field (``<resident>#health``): services granted health data (supplies,
testing) are handed that key with each record (``juwei.vault.KeyCourier``), nobody else can open it, and
erasure or retention shreds it everywhere. Events recorded before version 2 carried the flags and the birth
year in clear; they are read as version 2 with those fields private (never published again).
Every event that concerns one building declares ``building``: the envelope copies it and Kafka keys on it.
``audience`` says which roles besides staff read an event in the feed (see ``contracts.access``).
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import Field

from contracts import roles as r
from contracts.sensitivity import VOCABULARY
from juwei.events import DomainEvent, EventRegistry, Sealed, Sensitivity

TOPIC = "juwei.residents"
registry = EventRegistry(
    vocabulary=VOCABULARY,
    topic=TOPIC,
    description="Buildings, households, residents (ids only), staff, volunteers, zone status.",
)

HEALTH_FLAGS = ("regular_medication", "mobility_impaired", "bedridden", "pregnant")
OFFICER = frozenset({r.INFORMATION_OFFICER})
BUILDING_TEAM = frozenset({r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER})
HOUSEHOLD_STORY = frozenset({r.INFORMATION_OFFICER, r.HOUSEHOLD})

Role = Literal["information_officer", "logistics", "sampling_point"]
Shift = Literal["A", "B"]
ZoneName = Literal["sealed", "controlled", "precaution"]
Scope = Literal["building", "compound"]


class BuildingRegistered(DomainEvent):
    event_type = "juwei.residents.BuildingRegistered"
    version = 1
    audience = BUILDING_TEAM
    building: str
    number: str
    floors: int = Field(ge=1)
    rooms_per_floor: int = Field(ge=1)
    lifts: int = Field(ge=0)
    lift_capacity: int = Field(ge=0, description="people per lift trip; 0 when the building has no lift")


class HouseholdRegistered(DomainEvent):
    event_type = "juwei.residents.HouseholdRegistered"
    version = 1
    audience = frozenset({*BUILDING_TEAM, r.HOUSEHOLD})
    household: str
    building: str
    floor: int = Field(ge=1)
    room: int = Field(ge=1, description="room index on the floor, 1..rooms_per_floor")


class _Needs(DomainEvent):
    """A resident's needs: ``elderly`` (derived from the birth year at the time of the event) and ``infant`` in
    clear, the health flags sealed in ``health``. The flag fields themselves are private: only events recorded
    before version 2 hold them (in clear), and they are never published again."""

    private_fields: ClassVar[frozenset[str]] = frozenset(HEALTH_FLAGS)
    sealed_fields: ClassVar[dict[str, Sealed]] = {"health": Sealed("resident", HEALTH_FLAGS)}
    audience = HOUSEHOLD_STORY

    elderly: bool = False
    infant: bool = False
    health: str | None = Field(
        None,
        description="regular_medication, mobility_impaired, bedridden and pregnant, sealed under the key of "
        "<resident>#health; services granted health data are handed that key",
    )
    regular_medication: bool | None = None
    mobility_impaired: bool | None = None
    bedridden: bool | None = None
    pregnant: bool | None = None

    def flags(self) -> dict[str, bool] | None:
        """The health flags an event recorded before version 2 carried in clear; None for a sealed one."""
        if self.health is not None or all(getattr(self, flag) is None for flag in HEALTH_FLAGS):
            return None
        return {flag: bool(getattr(self, flag)) for flag in HEALTH_FLAGS}


def sealed_needs(flags: dict[str, Any]) -> dict[str, bool]:
    """The value sealed in ``health``: the four flags, always all of them (a token must not say which are set)."""
    return {flag: bool(flags.get(flag, False)) for flag in HEALTH_FLAGS}


class ResidentRegistered(_Needs):
    """A resident joins a household: identity and birth year kept here, health flags sealed."""

    event_type = "juwei.residents.ResidentRegistered"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"identity", "birth_year", *HEALTH_FLAGS})
    resident: str
    household: str
    building: str
    birth_year: int | None = Field(None, description="identity (with the flat, it narrows who): never published")
    identity: str | None = Field(
        None, description="name, phone and ID number sealed under the resident's own key; never published"
    )


class ResidentIdentityCorrected(DomainEvent):
    """A correction of name, phone or ID number: the sealed identity is replaced, nothing is published."""

    event_type = "juwei.residents.ResidentIdentityCorrected"
    version = 1
    private_fields: ClassVar[frozenset[str]] = frozenset({"identity"})
    audience = HOUSEHOLD_STORY
    resident: str
    household: str
    building: str
    identity: str | None = None


class ResidentMoved(DomainEvent):
    """Recorded by the household the resident leaves; ``building`` is the building moved to."""

    event_type = "juwei.residents.ResidentMoved"
    version = 1
    audience = HOUSEHOLD_STORY
    resident: str
    from_household: str
    from_building: str
    to_household: str
    building: str
    floor: int = Field(ge=1)
    room: int = Field(ge=1)


class ResidentArrived(_Needs):
    """Recorded by the household a moving resident joins (the other half of ``ResidentMoved``)."""

    event_type = "juwei.residents.ResidentArrived"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"birth_year", *HEALTH_FLAGS})
    resident: str
    household: str
    building: str
    from_household: str
    birth_year: int | None = Field(None, description="identity: never published")


class ResidentNeedsChanged(_Needs):
    """New needs of a resident: elderly and infant in clear, the health flags sealed."""

    event_type = "juwei.residents.ResidentNeedsChanged"
    version = 2
    resident: str
    household: str
    building: str


class ResidentErased(DomainEvent):
    event_type = "juwei.residents.ResidentErased"
    version = 1
    audience = HOUSEHOLD_STORY
    resident: str
    household: str
    building: str


class RepresentativeChosen(DomainEvent):
    event_type = "juwei.residents.RepresentativeChosen"
    version = 1
    audience = HOUSEHOLD_STORY
    sensitivity: ClassVar[dict[str, Sensitivity]] = {"previous": "location"}  # the former representative
    household: str
    resident: str
    building: str
    previous: str | None = None


Reach = Literal["no_smartphone", "not_in_group"]


class HouseholdMarkedUnreachable(DomainEvent):
    """No member of the household is in the building's group (or has no smartphone): urgent news reaches it
    only by a call or a visit from its information officer. Ids and the flat only; no name, no phone."""

    event_type = "juwei.residents.HouseholdMarkedUnreachable"
    version = 1
    audience = OFFICER
    household: str
    building: str
    floor: int = Field(ge=1)
    room: int = Field(ge=1)
    reason: Reach = "no_smartphone"


class HouseholdMarkedReachable(DomainEvent):
    """The household hears the building's group again (a member joined, a phone arrived): no more calls."""

    event_type = "juwei.residents.HouseholdMarkedReachable"
    version = 1
    audience = OFFICER
    household: str
    building: str


class StaffAssigned(DomainEvent):
    """The full list of buildings a committee member covers from now on (replaces the previous list)."""

    event_type = "juwei.residents.StaffAssigned"
    version = 1
    staff: str
    buildings: list[str]


class VolunteerEnlisted(DomainEvent):
    event_type = "juwei.residents.VolunteerEnlisted"
    version = 1
    audience = BUILDING_TEAM
    volunteer: str
    building: str
    skills: list[str] = Field(default_factory=list)


class VolunteerRoleAssigned(DomainEvent):
    event_type = "juwei.residents.VolunteerRoleAssigned"
    version = 1
    audience = BUILDING_TEAM
    volunteer: str
    building: str
    role: Role
    shift: Shift | None = None
    leader: bool = False
    replaces: str | None = Field(None, description="the volunteer this one replaces (information officer)")


class VolunteerRoleReleased(DomainEvent):
    event_type = "juwei.residents.VolunteerRoleReleased"
    version = 1
    audience = BUILDING_TEAM
    volunteer: str
    building: str
    role: Role
    reason: str = ""


class VolunteerStoodDown(DomainEvent):
    """The volunteer no longer serves (their roles are released with it): every key they hold ends."""

    event_type = "juwei.residents.VolunteerStoodDown"
    version = 1
    audience = BUILDING_TEAM
    volunteer: str
    building: str
    reason: str = ""


class WorkGroupNamed(DomainEvent):
    """The committee names (or renames) a compound-wide work group: data entry, writing, publicity…"""

    event_type = "juwei.residents.WorkGroupNamed"
    version = 1
    audience = BUILDING_TEAM
    group: str
    label: str = Field(description="the group's name as the committee calls it (数据录入, 宣传…)")
    description: str = ""
    building: str | None = Field(None, description="always none: a work group is the whole compound's")


class VolunteerJoinedWorkGroup(DomainEvent):
    event_type = "juwei.residents.VolunteerJoinedWorkGroup"
    version = 1
    audience = BUILDING_TEAM
    group: str
    volunteer: str
    building: str = Field(description="the building the volunteer is enlisted in")


class VolunteerLeftWorkGroup(DomainEvent):
    event_type = "juwei.residents.VolunteerLeftWorkGroup"
    version = 1
    audience = BUILDING_TEAM
    group: str
    volunteer: str
    building: str
    reason: str = ""


class VolunteerAvailabilitySet(DomainEvent):
    """When a volunteer can work, replacing what they said before (an empty list: not said)."""

    event_type = "juwei.residents.VolunteerAvailabilitySet"
    version = 1
    audience = BUILDING_TEAM
    volunteer: str
    building: str
    availability: list[str] = Field(
        default_factory=list, description='slots like "mon 08:00-12:00", one day each, in the compound\'s time'
    )


class MedicineAsked(DomainEvent):
    """The information officer asked a resident (an elderly or regular-medication one) about medicine this week."""

    event_type = "juwei.residents.MedicineAsked"
    version = 1
    audience = OFFICER
    # Whom it names hints at a need (asked, and not elderly: regular medication): kept in residents' own log.
    private_fields: ClassVar[frozenset[str]] = frozenset({"resident", "household"})
    sensitivity: ClassVar[dict[str, Sensitivity]] = {"resident": "health", "household": "health"}
    resident: str | None = Field(None, description="health (who is on the survey): never published")
    household: str | None = Field(None, description="health (who is on the survey): never published")
    building: str
    week: str = Field(description="the ISO week asked in, like 2022-W14", examples=["2022-W14"])
    asked_on: date


class ZoneCaseRecorded(DomainEvent):
    """A confirmed case counted for a zone (building or compound); it ends any authority decision."""

    event_type = "juwei.residents.ZoneCaseRecorded"
    version = 1
    audience = BUILDING_TEAM
    scope: Scope
    building: str | None = None
    case_on: date


class ZoneStatusChanged(DomainEvent):
    event_type = "juwei.residents.ZoneStatusChanged"
    version = 1
    audience = frozenset({*BUILDING_TEAM, r.SUBDISTRICT_STAFF})  # the subdistrict follows its compounds' zones
    scope: Scope
    building: str | None = None
    zone: ZoneName
    previous: ZoneName
    reason: str
    last_case_on: date | None = None
    days_since_last_case: int | None = None
    next_zone: ZoneName | None = None
    next_change_on: date | None = None
    decided_by_authority: bool = False


# --- the register of compounds (the envelope's compound is the one registered) -------------------------


class CompoundRegistered(DomainEvent):
    """A compound entered in the register, or moved to another subdistrict (街道): every service learns from it
    which compounds a subdistrict's key reaches (``contracts.access.CompoundPlacements``)."""

    event_type = "juwei.residents.CompoundRegistered"
    version = 1
    audience = frozenset({r.SUBDISTRICT_STAFF})
    subdistrict: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    # `label`, not `name`: event fields called `name` are a person's, and never travel (tests/residents/test_domain).
    label: str = Field(min_length=1, max_length=100, description="The compound's name, e.g. 石泉小区")
    building: str | None = Field(None, description="always none: the register concerns the whole compound")


class CompoundZoneRulesSet(DomainEvent):
    """The compound's own zone thresholds (days without a case before controlled, and before precaution); the
    deployment's setting holds for a compound that never set any."""

    event_type = "juwei.residents.CompoundZoneRulesSet"
    version = 1
    audience = frozenset({r.SUBDISTRICT_STAFF})
    sealed_days: int = Field(ge=1)
    precaution_days: int = Field(ge=2)
    building: str | None = Field(None, description="always none: the rules hold for the whole compound")


CATALOGUE: tuple[type[DomainEvent], ...] = (
    BuildingRegistered,
    HouseholdRegistered,
    ResidentRegistered,
    ResidentIdentityCorrected,
    ResidentMoved,
    ResidentArrived,
    ResidentNeedsChanged,
    ResidentErased,
    RepresentativeChosen,
    HouseholdMarkedUnreachable,
    HouseholdMarkedReachable,
    StaffAssigned,
    VolunteerEnlisted,
    VolunteerRoleAssigned,
    VolunteerRoleReleased,
    VolunteerStoodDown,
    WorkGroupNamed,
    VolunteerJoinedWorkGroup,
    VolunteerLeftWorkGroup,
    VolunteerAvailabilitySet,
    MedicineAsked,
    ZoneCaseRecorded,
    ZoneStatusChanged,
    CompoundRegistered,
    CompoundZoneRulesSet,
)
registry.register_all(CATALOGUE)


# Version 1 of the three needs events carried the flags and the birth year in clear. Read as version 2, the
# same fields are private: kept in this service's log for its own read models, never published or shown.
@registry.upcaster("juwei.residents.ResidentRegistered.v1", "juwei.residents.ResidentRegistered.v2")
@registry.upcaster("juwei.residents.ResidentArrived.v1", "juwei.residents.ResidentArrived.v2")
@registry.upcaster("juwei.residents.ResidentNeedsChanged.v1", "juwei.residents.ResidentNeedsChanged.v2")
def _needs_in_clear(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "health": None}
