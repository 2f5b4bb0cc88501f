"""Rounds, their call plans (testing without crowds), "call next" and door-to-door lists."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import roles as r
from contracts.testing import PlannedCall
from juwei.auth import CompoundId, LocalId, require
from juwei.callers import Caller
from juwei.problems import Problem
from services.testing.api.common import (
    Command,
    LocalIdText,
    global_id,
    local_id,
    local_time,
    now,
    require_point,
    runtime_of,
    shown,
    visible_buildings,
    zone_of,
)
from services.testing.domain import CallQueue, CallRules, Round, natural_key, plan_round
from services.testing.views import calls, capacities_of, door_to_door, layouts_of, plans, points, rounds

router = APIRouter(tags=["rounds"])
StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Callers = Annotated[Caller, Depends(require(*r.STAFF, r.SAMPLING_VOLUNTEER))]
Organisers = Annotated[Caller, Depends(require(*r.STAFF, r.SAMPLING_VOLUNTEER, r.INFORMATION_OFFICER))]
Compound = Annotated[
    Caller,
    Depends(
        require(
            *r.STAFF,
            r.SAMPLING_VOLUNTEER,
            r.INFORMATION_OFFICER,
            r.LOGISTICS_VOLUNTEER,
            r.HOUSEHOLD,
            r.SUBDISTRICT_STAFF,
        )
    ),
]


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


def _round_row(session: Session, compound: str, round_id: str) -> Any:
    row = session.execute(select(rounds).where(rounds.c["round"] == global_id(compound, round_id))).mappings().first()
    if row is None:
        raise Problem(404, f"round {round_id} is not scheduled", "round-unknown")
    return row


def round_view(request: Request, row: Any) -> dict[str, Any]:
    return {
        "round": local_id(row["round"]),
        "kind": row["kind"],
        "on": row["on"].isoformat(),
        "starts_at": shown(request, row["starts_at"]),
        "points": [local_id(p) for p in json.loads(row["points"])],
        "pool_size": row["pool_size"],
        "auto_advance": row["auto_advance"],
        **json.loads(row["rules"]),
    }


@router.post("/compounds/{compound}/rounds", status_code=201, summary="Schedule a PCR round or an antigen day")
def schedule(compound: CompoundId, body: RoundIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    starts_at = local_time(request, body.starts_at)
    rules = CallRules(
        mode=body.mode,
        floors_per_call=body.floors_per_call,
        floor_order=body.floor_order,
        slot_minutes=body.slot_minutes,
        window_minutes=body.window_minutes,
        lift_trip_minutes=body.lift_trip_minutes,
        walk_floors=body.walk_floors,
    )
    command = Command(request, caller, compound)
    with command.unit():
        assert command.session is not None
        open_points = set(
            command.session.execute(
                select(points.c.point).where(points.c.compound == compound, points.c.open.is_(True))
            ).scalars()
        )
        command.load(Round, global_id(compound, body.round)).schedule(
            body.kind,
            starts_at,
            [global_id(compound, p) for p in body.points],
            rules,
            on=starts_at.astimezone(zone_of(request)).date(),
            open_points=open_points,
            pool_size=body.pool_size,
            auto_advance=body.auto_advance,
        )
    with runtime_of(request).database.reading() as session:
        return round_view(request, _round_row(session, compound, body.round))


@router.get("/compounds/{compound}/rounds", summary="Rounds of the compound, latest first")
def list_rounds(compound: CompoundId, request: Request, caller: Compound) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        rows = session.execute(
            select(rounds).where(rounds.c.compound == compound).order_by(rounds.c.starts_at.desc())
        ).mappings()
        return {"rounds": [round_view(request, row) for row in rows]}


@router.get("/compounds/{compound}/rounds/{round}", summary="One round")
def get_round(compound: CompoundId, round: LocalId, request: Request, caller: Compound) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        return round_view(request, _round_row(session, compound, round))


def _call_view(request: Request, point: str, call: PlannedCall | Any) -> dict[str, Any]:
    """One timetable line, from the event's model or from a row of ``tst_calls``."""
    if isinstance(call, PlannedCall):
        fields = call.model_dump()
    else:
        fields = dict(call)
        fields["rooms"] = json.loads(fields["rooms"])
    low, high = fields["lowest_floor"], fields["highest_floor"]
    return {
        "point": local_id(point),
        "call": fields["call"],
        "building": local_id(fields["building"]),
        "floors": str(low) if low == high else f"{low}–{high}",
        "lowest_floor": low,
        "highest_floor": high,
        "rooms": fields["rooms"],
        "people": fields["people"],
        "lift_riders": fields["lift_riders"],
        "starts_at": shown(request, fields["starts_at"]),
        "ends_at": shown(request, fields["ends_at"]),
    }


@router.post("/compounds/{compound}/rounds/{round}/plan", summary="Make (or remake) the round's call plan")
def make_plan(compound: CompoundId, round: LocalId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    """From who lives where now: a timetable per point, and door-to-door visits for bedridden residents."""
    caller.require_scope(compound)
    round_id = global_id(compound, round)
    command = Command(request, caller, compound)
    with command.unit():
        assert command.session is not None
        chosen = command.load(Round, round_id)
        chosen.require_scheduled()
        if chosen.kind != "pcr":
            raise Problem(409, "an antigen day is a self-test: it has no call plan", "self-test-round")
        assert chosen.starts_at is not None
        plan = plan_round(
            chosen.starts_at,
            chosen.rules,
            capacities_of(command.session, compound, chosen.points),
            layouts_of(command.session, compound),
        )
        for point, table in plan.timetables.items():
            queue = command.load(CallQueue, CallQueue.id_of(round_id, point))
            queue.set_plan(round_id, point, chosen.rules.mode, table)
        chosen.assign_door_to_door(plan.door_to_door)
    return {
        "round": round,
        "mode": chosen.rules.mode,
        "called": len(plan.called_residents()),
        "door_to_door": sum(len(v) for v in plan.door_to_door.values()),
        "points": [
            {
                "point": local_id(point),
                "queue_limit": table.queue_limit,
                "peak_queue": table.peak_queue,
                "people": table.people,
                "finishes_at": shown(request, table.finishes_at),
                "calls": [_call_view(request, point, call.planned()) for call in table.calls],
            }
            for point, table in plan.timetables.items()
        ],
    }


@router.get("/compounds/{compound}/rounds/{round}/plan", summary="The round's timetable per point")
def read_plan(
    compound: CompoundId,
    round: LocalId,
    request: Request,
    caller: Organisers,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    """Information officers see the calls of their buildings; volunteers and staff see every point's."""
    wanted = visible_buildings(caller, compound, building)
    round_id = global_id(compound, round)
    with runtime_of(request).database.reading() as session:
        _round_row(session, compound, round)
        summaries = session.execute(select(plans).where(plans.c["round"] == round_id)).mappings().all()
        rows = (
            session.execute(select(calls).where(calls.c["round"] == round_id).order_by(calls.c.point, calls.c.call))
            .mappings()
            .all()
        )
    listed: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if wanted is not None and local_id(row["building"]) not in wanted:
            continue
        view = _call_view(request, row["point"], row)
        view["called_at"] = shown(request, row["called_at"])
        view["called_by"] = row["called_by"]
        listed.setdefault(row["point"], []).append(view)
    return {
        "round": round,
        "points": [
            {
                "point": local_id(s["point"]),
                "mode": s["mode"],
                "queue_limit": s["queue_limit"],
                "peak_queue": s["peak_queue"],
                "calls_planned": s["calls"],
                "calls_made": s["called"],
                "calls": listed.get(s["point"], []),
            }
            for s in sorted(summaries, key=lambda s: natural_key(s["point"]))
        ],
    }


@router.post(
    "/compounds/{compound}/rounds/{round}/points/{point}/calls/next",
    summary="Call next: the next floors come down to this point now",
)
def call_next(
    compound: CompoundId, round: LocalId, point: LocalId, request: Request, caller: Callers
) -> dict[str, Any]:
    round_id, point_id = global_id(compound, round), global_id(compound, point)
    command = Command(request, caller, compound)
    with command.unit():
        assert command.session is not None
        require_point(command.session, caller, compound, point)
        queue = command.load(CallQueue, CallQueue.id_of(round_id, point_id))
        called = queue.call_next(round_id, point_id, at=now(), by="volunteer")
        name = command.session.execute(select(points.c.name).where(points.c.point == point_id)).scalar() or point
    view = _call_view(request, point_id, called)
    view["message"] = call_message(local_id(called.building), view["floors"], view["rooms"], name)
    view["remaining"] = len(queue.calls) - queue.called
    return view


def call_message(building: str, floors: str, rooms: list[int], point_name: str) -> str:
    """What the building group reads: "Building 7, floors 10–12: come down to Point 3 now"."""
    label = "floors" if "–" in floors else "floor"
    only = f" (rooms {', '.join(map(str, rooms))})" if rooms else ""
    return f"Building {building}, {label} {floors}{only}: come down to {point_name} now"


@router.get("/compounds/{compound}/rounds/{round}/door-to-door", summary="Residents to sample at home")
def home_visits(
    compound: CompoundId,
    round: LocalId,
    request: Request,
    caller: Organisers,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    wanted = visible_buildings(caller, compound, building)
    with runtime_of(request).database.reading() as session:
        _round_row(session, compound, round)
        rows = (
            session.execute(select(door_to_door).where(door_to_door.c["round"] == global_id(compound, round)))
            .mappings()
            .all()
        )
    visits = [
        {
            "building": local_id(row["building"]),
            "floor": row["floor"],
            "household": local_id(row["household"]),
            "resident": local_id(row["resident"]),
        }
        for row in rows
        if wanted is None or local_id(row["building"]) in wanted
    ]
    visits.sort(key=lambda v: (natural_key(v["building"]), v["floor"], v["household"], v["resident"]))
    return {"round": round, "visits": visits}
