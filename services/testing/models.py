"""What the testing service's HTTP API takes and gives: request and response models, apart from the routes. Ids in
bodies are ids local to the compound; a time without an offset is the compound's wall-clock time."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.testing.domain import MAX_UPLOAD_TUBES, PLATE_WELLS

# An id inside a compound, as the API speaks it (the same pattern as path ids).
LocalIdText = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


def _plausible(moment: datetime) -> datetime:
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    return moment


# A time of the lockdown's work: a year far off is a typing error (and a zone's offset before 1901, such as Shanghai's
# +08:05:43, is one RFC 3339 cannot write back).
FIRST_YEAR, LAST_YEAR = 2000, 2100
WorkTime = Annotated[datetime, AfterValidator(_plausible)]


# --- sampling points -----------------------------------------------------------------------------------------------


class PointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "point": "p3",
                    "name": "Point 3",
                    "location": "north gate car park",
                    "throughput": 4,
                    "volunteers": ["v-0702", "v-1201"],
                }
            ]
        },
    )
    point: LocalIdText
    name: str = Field(min_length=1, max_length=100)
    location: str = Field(min_length=1, max_length=200)
    throughput: float = Field(gt=0, le=100, description="swabs per minute")
    volunteers: list[LocalIdText] = Field(default_factory=list, max_length=50)


class PointChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"throughput": 6}]})
    name: str | None = Field(None, min_length=1, max_length=100)
    location: str | None = Field(None, min_length=1, max_length=200)
    throughput: float | None = Field(None, gt=0, le=100)
    volunteers: list[LocalIdText] | None = Field(None, max_length=50)


class PointCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=200)


class BuildingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"buildings": ["1", "2", "3"]}]})
    buildings: list[LocalIdText] = Field(max_length=200, description="Buildings this point serves from now on")


class PointKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"volunteer": "v-0701"}]})

    volunteer: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$",
        description="The enlisted volunteer the key is issued to (it ends when they are stood down); "
        "none: the point's own device",
    )


# --- rounds --------------------------------------------------------------------------------------------------------


class RoundIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "round": "2022-04-12",
                    "kind": "pcr",
                    "starts_at": "2022-04-12T07:00:00+08:00",
                    "points": ["p1", "p2", "p3", "p4", "p5", "p6"],
                    "mode": "floor",
                    "floors_per_call": 3,
                }
            ]
        },
    )
    round: LocalIdText
    kind: Literal["pcr", "antigen"] = "pcr"
    starts_at: WorkTime = Field(description="Without an offset: the compound's wall-clock time")
    points: list[LocalIdText] = Field(default_factory=list, max_length=50)
    mode: Literal["building", "half_building", "floor", "auto"] = "floor"
    floors_per_call: int = Field(3, ge=1, le=20)
    floor_order: Literal["down", "up"] = "down"
    pool_size: int = Field(10, ge=1, le=20, description="samples per pooled tube (10-in-1)")
    slot_minutes: int = Field(5, ge=1, le=60)
    window_minutes: int = Field(10, ge=1, le=240, description="queue limit = throughput × window")
    lift_trip_minutes: int = Field(2, ge=1, le=30)
    walk_floors: int = Field(2, ge=0, le=10, description="floors up to this one take the stairs")
    auto_advance: bool = Field(False, description="call each unit at its planned time without a volunteer")


# --- samples and results -------------------------------------------------------------------------------------------


class SamplesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tube": "T0412-0001", "residents": ["r0701", "r0702"], "point": "p3"}]},
    )
    tube: LocalIdText = Field(description="The tube's barcode")
    residents: list[LocalIdText] = Field(min_length=1, max_length=20)
    point: LocalIdText | None = Field(None, description="Where the samples were taken (a volunteer's own point)")
    door_to_door: bool = Field(False, description="Taken at home (bedridden residents)")


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"result": "negative"}]})
    result: Literal["negative", "positive", "invalid"]


class CollectedTubeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tube: LocalIdText = Field(description="The tube's barcode")
    residents: list[LocalIdText] = Field(min_length=1, max_length=20)


class UploadIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"point": "p3", "tubes": [{"tube": "T0412-0001", "residents": ["r0701", "r0702"]}]}]
        },
    )
    point: LocalIdText | None = Field(None, description="Where the samples were taken (a volunteer's own point)")
    door_to_door: bool = Field(False, description="Taken at home (bedridden residents)")
    tubes: list[CollectedTubeIn] = Field(min_length=1, max_length=MAX_UPLOAD_TUBES)


class WellIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tube: LocalIdText = Field(description="The tube's barcode")
    result: Literal["negative", "positive", "invalid"]
    well: str | None = Field(None, pattern=r"^[A-H](?:[1-9]|1[0-2])$", description="Where it sat on the plate (A1–H12)")


class PlateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"results": [{"tube": "T0412-0001", "result": "negative", "well": "A1"}]}]},
    )
    results: list[WellIn] = Field(min_length=1, max_length=PLATE_WELLS)


# --- cases ---------------------------------------------------------------------------------------------------------


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"scheduled_at": "2022-04-13T14:00"}]})
    scheduled_at: WorkTime = Field(description="Without an offset: the compound's wall-clock time")


class TransferredIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"facility": "central isolation"}]})
    transferred_at: WorkTime | None = Field(None, description="Default: now")
    facility: str = Field("", max_length=200)


class CaseCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"outcome": "recovered"}]})
    outcome: Literal["returned", "recovered"]
    closed_at: WorkTime | None = Field(None, description="Default: now")


# --- answers (strict: a key the model does not name is a bug, not a leak) ---------------------------------------------

# Times go out as ISO 8601 in the compound's time zone, as written (``Clock.shown``).
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"}, examples=["2022-04-12T07:00:00+08:00"])]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointOpened(Answer):
    point: str
    name: str
    throughput: float = Field(description="Swabs per minute")


class PointChanged(Answer):
    point: str
    throughput: float
    volunteers: list[str]


class PointClosed(Answer):
    point: str
    open: Literal[False]


class PointOut(Answer):
    point: str
    name: str
    location: str
    throughput: float
    volunteers: list[str]
    open: bool
    buildings: list[str] = Field(description="The buildings it serves")
    residents: int = Field(description="Residents living in them")


class PointList(Answer):
    points: list[PointOut]
    unassigned: list[str] = Field(description="Buildings no point serves")


class PointShare(Answer):
    point: str
    buildings: list[str]
    residents: int


class AssignmentOut(Answer):
    points: list[PointShare]


class PointBuildings(Answer):
    point: str
    buildings: list[str]


class RoundOut(Answer):
    """A round as scheduled, with its call rules (rules not stored for an older round are left out)."""

    round: str
    kind: Literal["pcr", "antigen"]
    on: date
    starts_at: Moment
    points: list[str]
    pool_size: int
    auto_advance: bool
    mode: str = "floor"
    floors_per_call: int = 3
    floor_order: str = "down"
    slot_minutes: int = 5
    window_minutes: int = 10
    lift_trip_minutes: int = 2
    walk_floors: int = 2


class RoundList(Answer):
    rounds: list[RoundOut]


class CallOut(Answer):
    """One line of a point's timetable: which floors of which building come down, when, how many."""

    point: str
    call: int
    building: str
    floors: str = Field(examples=["10–12"])
    lowest_floor: int
    highest_floor: int
    rooms: list[int] = Field(description="Only these rooms of the floor; empty: every room")
    people: int
    lift_riders: int
    starts_at: Moment
    ends_at: Moment


class CallMade(CallOut):
    called_at: Moment | None = Field(description="None: not called yet")
    called_by: str | None


class CalledNext(CallOut):
    message: str = Field(description="What the building group reads")
    remaining: int = Field(description="Calls still to make at this point")


class PointTimetable(Answer):
    point: str
    queue_limit: int
    peak_queue: int
    people: int
    finishes_at: Moment
    calls: list[CallOut]


class PlanMade(Answer):
    round: str
    mode: str
    called: int = Field(description="Residents called to a point")
    door_to_door: int = Field(description="Residents sampled at home")
    points: list[PointTimetable]


class PointPlan(Answer):
    point: str
    mode: str
    queue_limit: int
    peak_queue: int
    calls_planned: int
    calls_made: int
    calls: list[CallMade]


class PlanOut(Answer):
    round: str
    points: list[PointPlan]


class HomeVisit(Answer):
    building: str
    floor: int
    household: str
    resident: str


class HomeVisits(Answer):
    round: str
    visits: list[HomeVisit]


Result = Literal["negative", "positive", "invalid"]


class PointKeyOut(Answer):
    key: str = Field(description="jw_<id>_<secret>: shown once")
    role: str
    point: str
    volunteer: str | None = Field(description="None: the point's own device")


class HouseholdKeyOut(Answer):
    key: str = Field(description="jw_<id>_<secret>: shown once")
    role: str
    household: str
    building: str


class SamplesCollected(Answer):
    tube: str
    kind: str = Field(examples=["pooled"])
    samples_in_tube: int
    capacity: int = Field(description="Samples the tube takes (the pool size, or 1)")
    collected: list[str]


class TubeRecorded(Answer):
    tube: str
    kind: str
    samples_in_tube: int


class TubesUploaded(Answer):
    round: str
    point: str | None
    recorded: list[TubeRecorded]
    samples: int
    repeated: list[str] = Field(description="Tubes already holding exactly these residents (the upload sent again)")


class TubeResulted(Answer):
    tube: str
    kind: str
    result: Result
    residents: list[str]
    case: str | None = Field(description="The case a positive individual tube opened")


class PlateResults(Answer):
    plate: str
    recorded: list[TubeResulted]
    repeated: list[str] = Field(description="Tubes that already had this result")


class IndividualResulted(Answer):
    resident: str
    tube: str
    result: Result
    case: str | None


class TubeOut(Answer):
    tube: str
    round: str
    kind: str
    point: str | None
    residents: list[str]
    resulted_at: Moment | None
    result: Result | None = Field(None, description="Only for roles with a health grant")


class AntigenReported(Answer):
    round: str
    household: str
    resident: str
    result: str
    pcr_requested: bool
    photo: str | None = Field(description="The photo's digest, if one was sent")


class MemberReport(Answer):
    resident: str
    result: str | None
    reported_at: Moment | None
    photo: str | None
    status: str | None


class HouseholdReports(Answer):
    round: str
    household: str
    members: list[MemberReport]


class ToResample(Answer):
    resident: str
    status: str


class HouseholdToChase(Answer):
    household: str
    not_tested: list[str]
    to_resample: list[ToResample]


class FloorToChase(Answer):
    floor: int
    households: list[HouseholdToChase]


class BuildingCoverage(Answer):
    building: str
    residents: int
    tested: int
    not_tested: int
    floors: list[FloorToChase]


class CoverageOut(Answer):
    round: str
    buildings: list[BuildingCoverage]


class BuildingCounts(Answer):
    building: str
    residents: int
    tested: int
    negative: int
    awaiting_result: int
    to_resample: int
    positive: int
    text: str = Field(examples=["Building 7: 198 of 200 tested"])


class CountsOut(Answer):
    round: str
    residents: int
    tested: int
    buildings: list[BuildingCounts]


class CaseOut(Answer):
    """A case as staff see it (health data: the resident and their close contacts)."""

    case: str
    resident: str
    household: str
    building: str
    status: str = Field(examples=["transfer-scheduled"])
    confirmed_on: date
    transfer_scheduled_at: Moment | None
    transferred_at: Moment | None
    facility: str | None
    closed_at: Moment | None
    outcome: str | None
    close_contacts: list[str]


class CaseList(Answer):
    cases: list[CaseOut]


class CaseCounts(Answer):
    """How many cases a compound has in each state, naming no one (the subdistrict's overview)."""

    compound: str
    by_status: dict[Literal["confirmed", "transfer-scheduled", "transferred", "closed"], int]
    total: int


class BuildingCase(Answer):
    """What the building group may know of a case: no ids."""

    number: int = Field(description="1, 2, … in the order confirmed")
    status: str
    confirmed_on: date
    transfer_scheduled_at: Moment | None
    transferred_at: Moment | None


class BuildingCases(Answer):
    building: str
    open_cases: int
    awaiting_transfer: int
    cases: list[BuildingCase]


class DisinfectionPhoto(Answer):
    photo: str = Field(description="The SHA-256 of its bytes")
    content_type: str
    size: int
    url: str


class DisinfectionOut(Answer):
    disinfection: str
    building: str
    done_at: Moment
    areas: list[str]
    photos: list[DisinfectionPhoto]
    after_case: bool


class BuildingDisinfections(Answer):
    building: str
    disinfections: list[DisinfectionOut]


class UnreachedHousehold(Answer):
    household: str
    floor: int
    room: int
    residents: int = Field(description="Members present, none of them sampled in the round yet")


class UnreachedBuilding(Answer):
    building: str
    households: list[UnreachedHousehold]


class UnreachedOut(Answer):
    round: str = Field(description="The current round: the one that began last, today or before")
    on: date
    buildings: list[UnreachedBuilding]


# --- a lab's result file -------------------------------------------------------------------------------------------


class ResultCounts(Answer):
    negative: int
    positive: int
    invalid: int


class LabCase(Answer):
    tube: str
    resident: str
    case: str | None = Field(description="The resident's case (opened by this result, or already open)")


class LabFileOut(Answer):
    file: str = Field(description="SHA-256 of the file's bytes: the same file again records nothing new")
    filename: str | None
    rows: int
    already_imported: bool = Field(description="This file was imported before: nothing was recorded this time")
    imported_at: Moment = Field(description="When the file was (first) imported")
    recorded: int = Field(description="Tubes whose result this upload recorded")
    repeated: list[str] = Field(description="Tubes that already had the result the file gives")
    results: ResultCounts = Field(description="The results recorded, by result")
    retests: list[str] = Field(description="Positive pools: each of their residents is asked for a re-test")
    recalled: list[str] = Field(description="Invalid tubes: their residents are called again")
    cases: list[LabCase] = Field(description="Positive individual tubes and the case each confirmed")
    plates: list[str]
    message: str = Field(description="What was done, in Chinese")
    message_en: str
