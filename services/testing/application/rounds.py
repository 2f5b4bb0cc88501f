"""Rounds, their call plans (testing without crowds), "call next" and door-to-door lists."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from contracts.ids import global_id, local_id
from contracts.testing import PlannedCall
from juwei.aggregate import Conflict
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.testing.application.clock import Clock, now
from services.testing.application.keys import require_point, visible_buildings
from services.testing.domain import CallQueue, CallRules, Round, natural_key, plan_round
from services.testing.models import RoundIn
from services.testing.views import calls, capacities_of, door_to_door, layouts_of, plans, points, rounds


def round_row(session: Session, compound: str, round_id: str) -> Any:
    row = session.execute(select(rounds).where(rounds.c["round"] == global_id(compound, round_id))).mappings().first()
    if row is None:
        raise Round.unknown(round_id)
    return row


def round_view(clock: Clock, row: Any) -> dict[str, Any]:
    return {
        "round": local_id(row["round"]),
        "kind": row["kind"],
        "on": row["on"].isoformat(),
        "starts_at": clock.shown(row["starts_at"]),
        "points": [local_id(p) for p in json.loads(row["points"])],
        "pool_size": row["pool_size"],
        "auto_advance": row["auto_advance"],
        **json.loads(row["rules"]),
    }


def schedule(unit: UnitOfWork, body: RoundIn) -> dict[str, Any]:
    """Schedule a PCR round or an antigen day at open points; the round as it reads afterwards."""
    compound = unit.compound
    clock = Clock.of(unit.runtime)
    starts_at = clock.local(body.starts_at)
    rules = CallRules(
        mode=body.mode,
        floors_per_call=body.floors_per_call,
        floor_order=body.floor_order,
        slot_minutes=body.slot_minutes,
        window_minutes=body.window_minutes,
        lift_trip_minutes=body.lift_trip_minutes,
        walk_floors=body.walk_floors,
    )
    with unit:
        open_points = set(
            unit.session.execute(
                select(points.c.point).where(points.c.compound == compound, points.c.open.is_(True))
            ).scalars()
        )
        unit.load_or_new(Round, global_id(compound, body.round)).schedule(
            body.kind,
            starts_at,
            [global_id(compound, p) for p in body.points],
            rules,
            on=starts_at.astimezone(clock.zone).date(),
            open_points=open_points,
            pool_size=body.pool_size,
            auto_advance=body.auto_advance,
        )
    with unit.runtime.database.reading() as session:
        return round_view(clock, round_row(session, compound, body.round))


def list_rounds(runtime: Runtime, compound: str) -> dict[str, Any]:
    """Rounds of the compound, latest first."""
    clock = Clock.of(runtime)
    with runtime.database.reading() as session:
        rows = session.execute(
            select(rounds).where(rounds.c.compound == compound).order_by(rounds.c.starts_at.desc())
        ).mappings()
        return {"rounds": [round_view(clock, row) for row in rows]}


def get_round(runtime: Runtime, compound: str, round: str) -> dict[str, Any]:
    with runtime.database.reading() as session:
        return round_view(Clock.of(runtime), round_row(session, compound, round))


def call_view(clock: Clock, point: str, call: PlannedCall | Any) -> dict[str, Any]:
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
        "starts_at": clock.shown(fields["starts_at"]),
        "ends_at": clock.shown(fields["ends_at"]),
    }


def make_plan(unit: UnitOfWork, round: str) -> dict[str, Any]:
    """Make (or remake) the round's call plan from who lives where now: a timetable per point, and
    door-to-door visits for bedridden residents."""
    compound = unit.compound
    clock = Clock.of(unit.runtime)
    round_id = global_id(compound, round)
    with unit:
        chosen = unit.load(Round, round_id)
        if chosen.kind != "pcr":
            raise Conflict("an antigen day is a self-test: it has no call plan", code="self-test-round")
        assert chosen.starts_at is not None
        plan = plan_round(
            chosen.starts_at,
            chosen.rules,
            capacities_of(unit.session, compound, chosen.points),
            layouts_of(unit.session, compound),
        )
        for point, table in plan.timetables.items():
            queue = unit.load_or_new(CallQueue, CallQueue.id_of(round_id, point))
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
                "finishes_at": clock.shown(table.finishes_at),
                "calls": [call_view(clock, point, call.planned()) for call in table.calls],
            }
            for point, table in plan.timetables.items()
        ],
    }


def read_plan(runtime: Runtime, caller: Caller, compound: str, round: str, building: str | None) -> dict[str, Any]:
    """The round's timetable per point: information officers see the calls of their buildings; volunteers and
    staff see every point's."""
    wanted = visible_buildings(caller, compound, building)
    clock = Clock.of(runtime)
    round_id = global_id(compound, round)
    with runtime.database.reading() as session:
        round_row(session, compound, round)
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
        view = call_view(clock, row["point"], row)
        view["called_at"] = clock.shown(row["called_at"])
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


def call_message(building: str, floors: str, rooms: list[int], point_name: str) -> str:
    """What the building group reads: "Building 7, floors 10–12: come down to Point 3 now"."""
    label = "floors" if "–" in floors else "floor"
    only = f" (rooms {', '.join(map(str, rooms))})" if rooms else ""
    return f"Building {building}, {label} {floors}{only}: come down to {point_name} now"


def call_next(unit: UnitOfWork, caller: Caller, round: str, point: str) -> dict[str, Any]:
    """Call next: the next floors come down to this point now."""
    compound = unit.compound
    round_id, point_id = global_id(compound, round), global_id(compound, point)
    with unit:
        require_point(unit.session, caller, compound, point)
        # Not ``load``: a point without a plan in this round is told to make the plan first.
        queue = unit.load_or_new(CallQueue, CallQueue.id_of(round_id, point_id))
        called = queue.call_next(round_id, point_id, at=now(), by="volunteer")
        name = unit.session.execute(select(points.c.name).where(points.c.point == point_id)).scalar() or point
    view = call_view(Clock.of(unit.runtime), point_id, called)
    view["message"] = call_message(local_id(called.building), view["floors"], view["rooms"], name)
    view["remaining"] = len(queue.calls) - queue.called
    return view


def home_visits(runtime: Runtime, caller: Caller, compound: str, round: str, building: str | None) -> dict[str, Any]:
    """Residents to sample at home (who, not why), of the buildings the caller may see."""
    wanted = visible_buildings(caller, compound, building)
    with runtime.database.reading() as session:
        round_row(session, compound, round)
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
