"""Routes of sampling points, the buildings each serves (a balanced proposal, changed by staff), and their keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contracts.access import RoundWorkers, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.testing.application import points
from services.testing.domain import natural_key
from services.testing.models import (
    AssignmentOut,
    BuildingsIn,
    PointBuildings,
    PointChanged,
    PointChangeIn,
    PointClosed,
    PointCloseIn,
    PointIn,
    PointKeyIn,
    PointKeyOut,
    PointList,
    PointOpened,
)

router = APIRouter(tags=["sampling points"])


@router.post(
    "/compounds/{compound}/points", status_code=201, response_model=PointOpened, summary="Open a sampling point"
)
def open_point(compound: CompoundId, body: PointIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    points.open_point(unit, body)
    return {"point": body.point, "name": body.name, "throughput": body.throughput}


@router.patch(
    "/compounds/{compound}/points/{point}",
    response_model=PointChanged,
    summary="Change a point's throughput, volunteers or place",
)
def change_point(
    compound: CompoundId, point: LocalId, body: PointChangeIn, caller: Staff, unit: Unit
) -> dict[str, Any]:
    return points.change_point(unit, point, body)


@router.post("/compounds/{compound}/points/{point}/close", response_model=PointClosed, summary="Close a sampling point")
def close_point(compound: CompoundId, point: LocalId, body: PointCloseIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    points.close_point(unit, point, body.reason)
    return {"point": point, "open": False}


@router.get(
    "/compounds/{compound}/points", response_model=PointList, summary="Sampling points, their buildings and residents"
)
def list_points(compound: CompoundId, caller: RoundWorkers, runtime: RuntimeOf) -> dict[str, Any]:
    return points.list_points(runtime, compound)


@router.get(
    "/compounds/{compound}/assignment/proposal",
    response_model=AssignmentOut,
    summary="A building→point assignment balancing residents",
)
def proposal(compound: CompoundId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return points.proposal(runtime, compound)


@router.post(
    "/compounds/{compound}/assignment/proposal", response_model=AssignmentOut, summary="Adopt the balanced proposal"
)
def adopt_proposal(compound: CompoundId, caller: Staff, unit: Unit) -> dict[str, Any]:
    return points.adopt_proposal(unit)


@router.put(
    "/compounds/{compound}/points/{point}/buildings",
    response_model=PointBuildings,
    summary="Set the buildings a point serves",
)
def assign(compound: CompoundId, point: LocalId, body: BuildingsIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    """Buildings named here move to this point; buildings this point served and not named are unassigned."""
    points.assign(unit, point, body)
    return {"point": point, "buildings": sorted(body.buildings, key=natural_key)}


@router.post(
    "/compounds/{compound}/points/{point}/keys",
    status_code=201,
    response_model=PointKeyOut,
    summary="A key for a point's volunteers",
)
def point_key(
    compound: CompoundId, point: LocalId, caller: Staff, runtime: RuntimeOf, body: PointKeyIn | None = None
) -> dict[str, Any]:
    """The key lets sampling volunteers call next and record samples at this point only. Issued to a volunteer,
    it is theirs (and ends when they are stood down); without one, it belongs to the point's device."""
    return points.point_key(runtime, compound, point, body.volunteer if body is not None else None)
