"""What the testing service's HTTP API takes: request models, apart from the routes. Ids in bodies are ids
local to the compound; a time without an offset is the compound's wall-clock time."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.testing.domain import MAX_UPLOAD_TUBES, PLATE_WELLS

# An id inside a compound, as the API speaks it (the same pattern as path ids).
LocalIdText = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


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
    starts_at: datetime = Field(description="Without an offset: the compound's wall-clock time")
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
    scheduled_at: datetime = Field(description="Without an offset: the compound's wall-clock time")


class TransferredIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"facility": "central isolation"}]})
    transferred_at: datetime | None = Field(None, description="Default: now")
    facility: str = Field("", max_length=200)


class CaseCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"outcome": "recovered"}]})
    outcome: Literal["returned", "recovered"]
    closed_at: datetime | None = Field(None, description="Default: now")


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
