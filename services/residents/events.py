"""The published event catalogue of the residents service (topic ``juwei.residents``).

Privacy (PIPL): these payloads go on Kafka and out of the feed, so they carry ids and the non-identifying
facts other services need (building, floor, room, household, birth year, needs flags, roles, zones) and
never a name, a phone number or an ID-card number. Identity stays inside the residents service.
Every event that concerns one building declares ``building``: the envelope copies it and Kafka keys on it.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from juwei.events import DomainEvent, EventRegistry

registry = EventRegistry()

Role = Literal["information_officer", "logistics", "sampling_point"]
Shift = Literal["A", "B"]
ZoneName = Literal["sealed", "controlled", "precaution"]
Scope = Literal["building", "compound"]


class BuildingRegistered(DomainEvent):
    event_type = "juwei.residents.BuildingRegistered"
    version = 1
    building: str
    number: str
    floors: int = Field(ge=1)
    rooms_per_floor: int = Field(ge=1)
    lifts: int = Field(ge=0)
    lift_capacity: int = Field(ge=0, description="people per lift trip; 0 when the building has no lift")


class HouseholdRegistered(DomainEvent):
    event_type = "juwei.residents.HouseholdRegistered"
    version = 1
    household: str
    building: str
    floor: int = Field(ge=1)
    room: int = Field(ge=1, description="room index on the floor, 1..rooms_per_floor")


class _NeedsFlags(DomainEvent):
    """The needs flags; ``elderly`` is derived from the birth year at the time of the event, not an input."""

    regular_medication: bool = False
    mobility_impaired: bool = False
    bedridden: bool = False
    pregnant: bool = False
    infant: bool = False
    elderly: bool = False


class ResidentRegistered(_NeedsFlags):
    event_type = "juwei.residents.ResidentRegistered"
    version = 1
    private_fields: ClassVar[frozenset[str]] = frozenset({"identity"})
    resident: str
    household: str
    building: str
    birth_year: int
    identity: str | None = Field(
        None, description="name, phone and ID number sealed under the resident's own key; never published"
    )


class ResidentIdentityCorrected(DomainEvent):
    """A correction of name, phone or ID number: the sealed identity is replaced, nothing is published."""

    event_type = "juwei.residents.ResidentIdentityCorrected"
    version = 1
    private_fields: ClassVar[frozenset[str]] = frozenset({"identity"})
    resident: str
    household: str
    building: str
    identity: str | None = None


class ResidentMoved(DomainEvent):
    """Recorded by the household the resident leaves; ``building`` is the building moved to."""

    event_type = "juwei.residents.ResidentMoved"
    version = 1
    resident: str
    from_household: str
    from_building: str
    to_household: str
    building: str
    floor: int = Field(ge=1)
    room: int = Field(ge=1)


class ResidentArrived(_NeedsFlags):
    """Recorded by the household a moving resident joins (the other half of ``ResidentMoved``)."""

    event_type = "juwei.residents.ResidentArrived"
    version = 1
    resident: str
    household: str
    building: str
    from_household: str
    birth_year: int


class ResidentNeedsChanged(_NeedsFlags):
    event_type = "juwei.residents.ResidentNeedsChanged"
    version = 1
    resident: str
    household: str
    building: str


class ResidentErased(DomainEvent):
    event_type = "juwei.residents.ResidentErased"
    version = 1
    resident: str
    household: str
    building: str


class RepresentativeChosen(DomainEvent):
    event_type = "juwei.residents.RepresentativeChosen"
    version = 1
    household: str
    resident: str
    building: str
    previous: str | None = None


class StaffAssigned(DomainEvent):
    """The full list of buildings a committee member covers from now on (replaces the previous list)."""

    event_type = "juwei.residents.StaffAssigned"
    version = 1
    staff: str
    buildings: list[str]


class VolunteerEnlisted(DomainEvent):
    event_type = "juwei.residents.VolunteerEnlisted"
    version = 1
    volunteer: str
    building: str
    skills: list[str] = Field(default_factory=list)


class VolunteerRoleAssigned(DomainEvent):
    event_type = "juwei.residents.VolunteerRoleAssigned"
    version = 1
    volunteer: str
    building: str
    role: Role
    shift: Shift | None = None
    leader: bool = False
    replaces: str | None = Field(None, description="the volunteer this one replaces (information officer)")


class VolunteerRoleReleased(DomainEvent):
    event_type = "juwei.residents.VolunteerRoleReleased"
    version = 1
    volunteer: str
    building: str
    role: Role
    reason: str = ""


class ZoneCaseRecorded(DomainEvent):
    """A confirmed case counted for a zone (building or compound); it ends any authority decision."""

    event_type = "juwei.residents.ZoneCaseRecorded"
    version = 1
    scope: Scope
    building: str | None = None
    case_on: date


class ZoneStatusChanged(DomainEvent):
    event_type = "juwei.residents.ZoneStatusChanged"
    version = 1
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
    StaffAssigned,
    VolunteerEnlisted,
    VolunteerRoleAssigned,
    VolunteerRoleReleased,
    ZoneCaseRecorded,
    ZoneStatusChanged,
)
registry.register_all(CATALOGUE)
