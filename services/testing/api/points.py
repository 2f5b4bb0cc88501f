"""Sampling points, the buildings each serves (a balanced proposal, changed by staff), and their keys."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from contracts import roles as r
from juwei.auth import CompoundId, LocalId, issue_key, require
from juwei.callers import Caller, Holder
from juwei.problems import Problem
from services.testing.api.common import Command, LocalIdText, global_id, local_id, runtime_of
from services.testing.domain import PointAssignment, SamplingPoint, natural_key, propose_assignment
from services.testing.views import buildings, key_bindings, point_buildings, points, residents, volunteers

router = APIRouter(tags=["sampling points"])
StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Organisers = Annotated[Caller, Depends(require(*r.STAFF, r.SAMPLING_VOLUNTEER, r.INFORMATION_OFFICER))]


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


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=200)


class BuildingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"buildings": ["1", "2", "3"]}]})
    buildings: list[LocalIdText] = Field(max_length=200, description="Buildings this point serves from now on")


def _open_points(command: Command) -> set[str]:
    assert command.session is not None
    rows = command.session.execute(
        select(points.c.point).where(points.c.compound == command.compound, points.c.open.is_(True))
    )
    return set(rows.scalars())


def _known_buildings(command: Command) -> set[str]:
    assert command.session is not None
    rows = command.session.execute(select(buildings.c.building).where(buildings.c.compound == command.compound))
    return set(rows.scalars())


def _point_view(row: Any, served: list[str], people: int) -> dict[str, Any]:
    return {
        "point": local_id(row["point"]),
        "name": row["name"],
        "location": row["location"],
        "throughput": row["throughput"],
        "volunteers": [local_id(v) for v in json.loads(row["volunteers"])],
        "open": row["open"],
        "buildings": served,
        "residents": people,
    }


@router.post("/compounds/{compound}/points", status_code=201, summary="Open a sampling point")
def open_point(compound: CompoundId, body: PointIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        point = command.load(SamplingPoint, global_id(compound, body.point))
        point.open(body.name, body.location, body.throughput, [global_id(compound, v) for v in body.volunteers])
    return {"point": body.point, "name": body.name, "throughput": body.throughput}


@router.patch("/compounds/{compound}/points/{point}", summary="Change a point's throughput, volunteers or place")
def change_point(
    compound: CompoundId, point: LocalId, body: PointChangeIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        found = command.load(SamplingPoint, global_id(compound, point))
        found.change(
            name=body.name,
            location=body.location,
            throughput=body.throughput,
            volunteers=None if body.volunteers is None else [global_id(compound, v) for v in body.volunteers],
        )
    return {"point": point, "throughput": found.throughput, "volunteers": [local_id(v) for v in found.volunteers]}


@router.post("/compounds/{compound}/points/{point}/close", summary="Close a sampling point")
def close_point(
    compound: CompoundId, point: LocalId, body: CloseIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        command.load(SamplingPoint, global_id(compound, point)).close(body.reason)
    return {"point": point, "open": False}


def _residents_per_building(session: Any, compound: str) -> dict[str, int]:
    every = {
        b: 0 for b in session.execute(select(buildings.c.building).where(buildings.c.compound == compound)).scalars()
    }
    rows = session.execute(
        select(residents.c.building, func.count())
        .where(residents.c.compound == compound, residents.c.present.is_(True))
        .group_by(residents.c.building)
    )
    every.update({building: count for building, count in rows})
    return every


@router.get("/compounds/{compound}/points", summary="Sampling points, their buildings and residents")
def list_points(compound: CompoundId, request: Request, caller: Organisers) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        rows = session.execute(select(points).where(points.c.compound == compound)).mappings().all()
        served = session.execute(
            select(point_buildings.c.point, point_buildings.c.building).where(point_buildings.c.compound == compound)
        ).all()
        people = _residents_per_building(session, compound)
    by_point: dict[str, list[str]] = {}
    for point, building in served:
        by_point.setdefault(point, []).append(building)
    listed = []
    for row in sorted(rows, key=lambda row: natural_key(row["point"])):
        mine = sorted(by_point.get(row["point"], []), key=natural_key)
        listed.append(_point_view(row, [local_id(b) for b in mine], sum(people.get(b, 0) for b in mine)))
    assigned = {b for _, b in served}
    unassigned = sorted((b for b in people if b not in assigned), key=natural_key)
    return {"points": listed, "unassigned": [local_id(b) for b in unassigned]}


@router.get("/compounds/{compound}/assignment/proposal", summary="A building→point assignment balancing residents")
def proposal(compound: CompoundId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        proposed, people = _propose(session, compound)
    return _assignment_view(proposed, people)


def _propose(session: Any, compound: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    throughputs = {
        point: throughput
        for point, throughput in session.execute(
            select(points.c.point, points.c.throughput).where(points.c.compound == compound, points.c.open.is_(True))
        )
    }
    people = _residents_per_building(session, compound)
    return propose_assignment(throughputs, people), people


def _assignment_view(chosen: dict[str, list[str]], people: dict[str, int]) -> dict[str, Any]:
    return {
        "points": [
            {
                "point": local_id(point),
                "buildings": [local_id(b) for b in served],
                "residents": sum(people.get(b, 0) for b in served),
            }
            for point, served in sorted(chosen.items(), key=lambda item: natural_key(item[0]))
        ]
    }


@router.post("/compounds/{compound}/assignment/proposal", summary="Adopt the balanced proposal")
def adopt_proposal(compound: CompoundId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        assert command.session is not None
        proposed, people = _propose(command.session, compound)
        assignment = command.load(PointAssignment, compound)
        assignment.reassign(
            proposed, open_points=_open_points(command), known_buildings=_known_buildings(command), proposed=True
        )
    return _assignment_view(proposed, people)


@router.put("/compounds/{compound}/points/{point}/buildings", summary="Set the buildings a point serves")
def assign(
    compound: CompoundId, point: LocalId, body: BuildingsIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    """Buildings named here move to this point; buildings this point served and not named are unassigned."""
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        assignment = command.load(PointAssignment, compound)
        assignment.assign(
            global_id(compound, point),
            [global_id(compound, b) for b in body.buildings],
            open_points=_open_points(command),
            known_buildings=_known_buildings(command),
        )
    return {"point": point, "buildings": sorted(body.buildings, key=natural_key)}


class PointKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"volunteer": "v-0701"}]})

    volunteer: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$",
        description="The enlisted volunteer the key is issued to (it ends when they are stood down); "
        "none: the point's own device",
    )


@router.post("/compounds/{compound}/points/{point}/keys", status_code=201, summary="A key for a point's volunteers")
def point_key(
    compound: CompoundId, point: LocalId, request: Request, caller: StaffOnly, body: PointKeyIn | None = None
) -> dict[str, Any]:
    """The key lets sampling volunteers call next and record samples at this point only. Issued to a volunteer,
    it is theirs (and ends when they are stood down); without one, it belongs to the point's device."""
    caller.require_scope(compound)
    runtime = runtime_of(request)
    volunteer = body.volunteer if body is not None else None
    with runtime.database.unit_of_work() as session:
        known = session.execute(select(points.c.open).where(points.c.point == global_id(compound, point))).scalar()
        if known is None:
            raise Problem(404, f"sampling point {point} is not open", "point-unknown")
        if volunteer is None:
            holder = Holder("system", f"{global_id(compound, point)} device")
        else:
            serving = session.execute(
                select(volunteers.c.serving).where(volunteers.c.volunteer == global_id(compound, volunteer))
            ).scalar()
            if not serving:
                state = "was stood down" if serving is not None else "is not enlisted"
                raise Problem(422, f"volunteer {volunteer} {state}: no key is issued to them", "volunteer-not-serving")
            holder = Holder("volunteer", global_id(compound, volunteer))
        issued = issue_key(session, r.SAMPLING_VOLUNTEER, compound, label=f"sampling point {point}", holder=holder)
        session.execute(
            key_bindings.insert().values(
                key_id=issued.caller.key_id, compound=compound, point=global_id(compound, point), household=None
            )
        )
    return {"key": issued.key, "role": r.SAMPLING_VOLUNTEER, "point": point, "volunteer": volunteer}
