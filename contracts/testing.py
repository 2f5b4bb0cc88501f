"""The published event catalogue of the testing service (topic ``juwei.testing``).

Events carry resident, household and building ids (district-wide, ``<compound>:<id>``) and counts; never a
name, a phone or an ID number. Health data stays in the testing service (version 2 of the events that hold
it): results and cassette photos, who is sampled at home (the bedridden), who is in a positive pool, who
had a positive self-test, whose case it is and who their close contacts are are private fields, kept in
testing's own log and served only by its API to those granted; on Kafka and in the feed these events say
what happened where (round, tube, building, case id), not to whom. Other services need no more: residents
re-seals a building from a case's building and date, notify tells the building.
Every event that concerns one building declares ``building``: the envelope copies it and Kafka keys on it,
so one building's calls, results, cases and disinfections reach notify in order.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import roles as r
from contracts.sensitivity import COUNT, VOCABULARY
from juwei.events import DomainEvent, EventRegistry, Sensitivity

TOPIC = "juwei.testing"
registry = EventRegistry(
    vocabulary=VOCABULARY,
    topic=TOPIC,
    description="Sampling points, rounds, call plans, samples, results (ids only), cases, disinfection.",
)

# Who besides staff reads each event in the feed (``contracts.access``): a point's volunteers its round and
# calls, a building's team its calls and progress, a household its own samples.
AT_THE_POINT = frozenset({r.SAMPLING_VOLUNTEER})
CALLING = frozenset({r.SAMPLING_VOLUNTEER, r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER})
BUILDING_NEWS = frozenset({r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER})
# Person links of a health finding (a positive pool, a case, a contact): health, kept in this service.
WHO: dict[str, Sensitivity] = dict.fromkeys(("resident", "residents", "household", "households"), "health")

RoundKind = Literal["pcr", "antigen"]
CallMode = Literal["building", "half_building", "floor", "auto"]
FloorOrder = Literal["down", "up"]
SampleKind = Literal["pooled", "individual"]
Result = Literal["negative", "positive", "invalid"]
CalledBy = Literal["volunteer", "schedule"]
Outcome = Literal["returned", "recovered"]


# --- sampling points and which buildings they serve ------------------------------------------------------


class SamplingPointOpened(DomainEvent):
    event_type = "juwei.testing.SamplingPointOpened"
    version = 1
    audience = AT_THE_POINT
    point: str
    name: str
    location: str
    throughput: float = Field(gt=0, description="swabs per minute the point takes")
    volunteers: list[str] = Field(default_factory=list, description="volunteer ids staffing the point")


class SamplingPointChanged(DomainEvent):
    """The point's full description from now on (throughput and volunteers change as people come and go)."""

    event_type = "juwei.testing.SamplingPointChanged"
    version = 1
    audience = AT_THE_POINT
    point: str
    name: str
    location: str
    throughput: float = Field(gt=0)
    volunteers: list[str] = Field(default_factory=list)


class SamplingPointClosed(DomainEvent):
    event_type = "juwei.testing.SamplingPointClosed"
    version = 1
    audience = AT_THE_POINT
    point: str
    reason: str = ""


class BuildingsAssigned(DomainEvent):
    """Every building the point serves from now on (replaces its previous list)."""

    event_type = "juwei.testing.BuildingsAssigned"
    version = 1
    audience = AT_THE_POINT
    point: str
    buildings: list[str]
    proposed: bool = Field(False, description="taken from the balanced proposal rather than set by staff")


# --- rounds and their call plans -------------------------------------------------------------------------


class RoundScheduled(DomainEvent):
    event_type = "juwei.testing.RoundScheduled"
    version = 1
    audience = frozenset({*CALLING, r.SUBDISTRICT_STAFF})  # the subdistrict follows its compounds' rounds
    round: str
    kind: RoundKind
    on: date
    starts_at: datetime
    points: list[str]
    mode: CallMode
    floors_per_call: int = Field(ge=1)
    floor_order: FloorOrder
    pool_size: int = Field(ge=1)
    slot_minutes: int = Field(ge=1)
    window_minutes: int = Field(ge=1)
    lift_trip_minutes: int = Field(ge=1)
    walk_floors: int = Field(ge=0)
    auto_advance: bool


class PlannedCall(BaseModel):
    """One line of a point's timetable: which floors of which building come down, when, how many."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    call: int = Field(ge=1)
    building: str
    lowest_floor: int = Field(ge=1)
    highest_floor: int = Field(ge=1)
    people: int = Field(ge=1)
    lift_riders: int = Field(ge=0)
    rooms: list[int] = Field(default_factory=list, description="only these rooms of the floor; empty: every room")
    starts_at: datetime
    ends_at: datetime


class CallPlanMade(DomainEvent):
    """A point's timetable for a round (made again, it replaces the previous one until calls begin)."""

    event_type = "juwei.testing.CallPlanMade"
    version = 1
    audience = CALLING
    round: str
    point: str
    mode: CallMode
    queue_limit: int
    peak_queue: int
    calls: list[PlannedCall]


class HomeVisit(BaseModel):
    """One resident sampled at home: where the sampling volunteer goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    resident: str
    household: str
    floor: int = Field(ge=1)


class DoorToDoorSamplingAssigned(DomainEvent):
    """Residents who cannot come down (bedridden) are sampled at home instead of being called.

    Who they are (``visits``) is health data, kept in this service; the event says how many."""

    event_type = "juwei.testing.DoorToDoorSamplingAssigned"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"visits"})
    audience = BUILDING_NEWS
    round: str
    building: str
    home_visits: int = Field(0, ge=0, description="how many residents of the building are sampled at home")
    visits: list[HomeVisit] | None = None


class UnitCalled(DomainEvent):
    """ "Floors 10–12 of building 7, come down to point 3 now": notify tells the building."""

    event_type = "juwei.testing.UnitCalled"
    version = 1
    audience = CALLING
    round: str
    point: str
    call: int
    building: str
    lowest_floor: int
    highest_floor: int
    rooms: list[int] = Field(default_factory=list, description="only these rooms of the floor; empty: every room")
    people: int
    planned_at: datetime
    called_at: datetime
    called_by: CalledBy


# --- samples, tubes and results -----------------------------------------------------------------------------


class SampleCollected(DomainEvent):
    """One swab in one tube; whether it was taken at home (the bedridden) is kept in this service."""

    event_type = "juwei.testing.SampleCollected"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"door_to_door"})
    audience = frozenset({r.SAMPLING_VOLUNTEER, r.HOUSEHOLD})
    round: str
    tube: str
    point: str | None = None
    resident: str
    household: str
    building: str
    kind: SampleKind
    attempt: int = Field(ge=1, description="the resident's how-many-th sample in this round")
    door_to_door: bool | None = None
    collected_at: datetime


class BuildingTestingProgress(DomainEvent):
    """A building passed a milestone of a round (a quarter, half, three quarters, everyone): counts only."""

    event_type = "juwei.testing.BuildingTestingProgress"
    version = 1
    audience = BUILDING_NEWS
    sensitivity: ClassVar[dict[str, Sensitivity]] = {"residents": COUNT}
    round: str
    building: str
    tested: int = Field(ge=0)
    residents: int = Field(ge=0)
    milestone: int = Field(ge=0, le=100, description="percent of the building's residents tested")


class TubeResulted(DomainEvent):
    """A pooled tube's result: negative clears everyone in it; positive and invalid are followed up.

    The result is kept in this service."""

    event_type = "juwei.testing.TubeResulted"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"result"})
    round: str
    tube: str
    result: Result | None = None
    residents: list[str]
    resulted_at: datetime


class RetestRequested(DomainEvent):
    """A positive pool: its residents of one building stay home and are re-tested one by one (who: kept here)."""

    event_type = "juwei.testing.RetestRequested"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"residents", "households"})
    sensitivity = WHO
    audience = BUILDING_NEWS
    round: str
    tube: str
    building: str
    residents: list[str] | None = None
    households: list[str] | None = None


class ResidentsRecalled(DomainEvent):
    """An invalid sample: these residents of one building are called again."""

    event_type = "juwei.testing.ResidentsRecalled"
    version = 1
    audience = BUILDING_NEWS
    round: str
    tube: str
    building: str
    residents: list[str]
    households: list[str]
    reason: str


class IndividualResultRecorded(DomainEvent):
    """A resident's own result (kept in this service)."""

    event_type = "juwei.testing.IndividualResultRecorded"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"result"})
    audience = frozenset({r.HOUSEHOLD})
    round: str
    tube: str
    resident: str
    household: str
    building: str
    result: Result | None = None
    resulted_at: datetime


class LabFileImported(DomainEvent):
    """A lab's result file was imported (its tubes' results are their own events): named by its content's
    SHA-256, so that the same file sent again records nothing new. Counts only."""

    event_type = "juwei.testing.LabFileImported"
    version = 1
    file: str = Field(description="SHA-256 of the file's bytes (hex)")
    rows: int = Field(ge=0)
    recorded: int = Field(ge=0, description="tubes whose result the file recorded")
    repeated: int = Field(ge=0, description="tubes that already had the result the file gives")
    imported_at: datetime


class AntigenReported(DomainEvent):
    """A self-test reported; its result and the photo of the cassette are kept in this service."""

    event_type = "juwei.testing.AntigenReported"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"result", "photo"})
    audience = frozenset({r.HOUSEHOLD, r.INFORMATION_OFFICER})
    round: str
    resident: str
    household: str
    building: str
    result: Result | None = None
    photo: str | None = Field(None, description="id of the photo of the test cassette kept by the service")
    reported_at: datetime


class PcrRequested(DomainEvent):
    """A positive antigen self-test asks for a PCR sample to confirm it (whose, and why: kept here)."""

    event_type = "juwei.testing.PcrRequested"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"resident", "household", "reason"})
    sensitivity: ClassVar[dict[str, Sensitivity]] = {**WHO, "reason": "health"}
    audience = BUILDING_NEWS
    round: str
    resident: str | None = None
    household: str | None = None
    building: str
    reason: str | None = None


# --- cases and transfers -------------------------------------------------------------------------------------


class CaseConfirmed(DomainEvent):
    """An individual positive PCR result made a confirmed case (residents re-seals the building).

    Whose case it is stays in this service: "one new case in building 12", never who."""

    event_type = "juwei.testing.CaseConfirmed"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"resident", "household"})
    sensitivity = WHO
    audience = BUILDING_NEWS
    case: str
    resident: str | None = None
    household: str | None = None
    building: str
    confirmed_on: date


class CloseContactsIsolated(DomainEvent):
    """The case's household are close contacts in home isolation (who: kept in this service)."""

    event_type = "juwei.testing.CloseContactsIsolated"
    version = 2
    private_fields: ClassVar[frozenset[str]] = frozenset({"household", "residents"})
    sensitivity = WHO
    audience = BUILDING_NEWS
    case: str
    household: str | None = None
    building: str
    residents: list[str] | None = None
    since: date


class TransferScheduled(DomainEvent):
    event_type = "juwei.testing.TransferScheduled"
    version = 1
    audience = BUILDING_NEWS
    case: str
    building: str
    scheduled_at: datetime


class CaseTransferred(DomainEvent):
    """The case left for central isolation (转运)."""

    event_type = "juwei.testing.CaseTransferred"
    version = 1
    audience = BUILDING_NEWS
    case: str
    building: str
    transferred_at: datetime
    facility: str = ""


class CaseClosed(DomainEvent):
    event_type = "juwei.testing.CaseClosed"
    version = 1
    audience = BUILDING_NEWS
    case: str
    building: str
    outcome: Outcome
    closed_at: datetime


# --- disinfection ----------------------------------------------------------------------------------------------


class StoredPhoto(BaseModel):
    """A photo the service stores: its id is the SHA-256 of its bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    photo: str
    content_type: str
    size: int = Field(ge=1)


# The secret notify signs photo links under and testing checks them with (``Settings.shared_key``).
LINK_SECRET = "JUWEI_LINK_SECRET"


def disinfection_photo_path(compound: str, disinfection: str, photo: str) -> str:
    """Where testing serves a disinfection photo to whoever holds a signed link; also what the link signs."""
    return f"/photos/{compound}/{disinfection}/{photo}"


class DisinfectionRecorded(DomainEvent):
    """The building's common areas were disinfected (消杀); the photos are what residents trust."""

    event_type = "juwei.testing.DisinfectionRecorded"
    version = 1
    audience = BUILDING_NEWS
    disinfection: str
    building: str
    done_at: datetime
    areas: list[str]
    photos: list[StoredPhoto]
    case: str | None = None


CATALOGUE: tuple[type[DomainEvent], ...] = (
    SamplingPointOpened,
    SamplingPointChanged,
    SamplingPointClosed,
    BuildingsAssigned,
    RoundScheduled,
    CallPlanMade,
    DoorToDoorSamplingAssigned,
    UnitCalled,
    SampleCollected,
    BuildingTestingProgress,
    TubeResulted,
    RetestRequested,
    ResidentsRecalled,
    IndividualResultRecorded,
    LabFileImported,
    AntigenReported,
    PcrRequested,
    CaseConfirmed,
    CloseContactsIsolated,
    TransferScheduled,
    CaseTransferred,
    CaseClosed,
    DisinfectionRecorded,
)
registry.register_all(CATALOGUE)


def _kept(data: dict[str, Any]) -> dict[str, Any]:
    # Version 1 published these fields; version 2 keeps them in this service (its log's private part).
    return data


for _name in (
    "SampleCollected",
    "TubeResulted",
    "RetestRequested",
    "IndividualResultRecorded",
    "AntigenReported",
    "PcrRequested",
    "CaseConfirmed",
    "CloseContactsIsolated",
):
    registry.upcaster(f"juwei.testing.{_name}.v1", f"juwei.testing.{_name}.v2")(_kept)


@registry.upcaster("juwei.testing.DoorToDoorSamplingAssigned.v1", "juwei.testing.DoorToDoorSamplingAssigned.v2")
def _home_visits_counted(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "home_visits": len(data.get("visits") or [])}
