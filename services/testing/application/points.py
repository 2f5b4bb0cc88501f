"""Sampling points, the buildings each serves (a balanced proposal, changed by staff), and their keys."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from contracts import roles as r
from contracts.ids import global_id, local_id
from juwei.aggregate import Invalid
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.testing.domain import (
    PointAssignment,
    SamplingPoint,
    check_point_volunteers,
    natural_key,
    propose_assignment,
)
from services.testing.models import BuildingsIn, PointChangeIn, PointIn
from services.testing.views import buildings, key_bindings, point_buildings, points, residents, volunteers


def _open_points(unit: UnitOfWork) -> set[str]:
    rows = unit.session.execute(
        select(points.c.point).where(points.c.compound == unit.compound, points.c.open.is_(True))
    )
    return set(rows.scalars())


def _known_buildings(unit: UnitOfWork) -> set[str]:
    rows = unit.session.execute(select(buildings.c.building).where(buildings.c.compound == unit.compound))
    return set(rows.scalars())


def _check_volunteers(unit: UnitOfWork, point: str, chosen: list[str]) -> None:
    """The volunteers named must be enlisted with residents, serving, and live in a building the point serves."""
    if not chosen:
        return
    enlisted = {
        volunteer: (building, serving)
        for volunteer, building, serving in unit.session.execute(
            select(volunteers.c.volunteer, volunteers.c.building, volunteers.c.serving).where(
                volunteers.c.volunteer.in_(chosen)
            )
        )
    }
    served = set(
        unit.session.execute(select(point_buildings.c.building).where(point_buildings.c.point == point)).scalars()
    )
    check_point_volunteers(chosen, enlisted=enlisted, served=served)


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


def open_point(unit: UnitOfWork, body: PointIn) -> None:
    with unit:
        point = unit.load_or_new(SamplingPoint, global_id(unit.compound, body.point))
        chosen = [global_id(unit.compound, v) for v in body.volunteers]
        if not point.exists:  # an open point's own problem (409) comes first
            _check_volunteers(unit, point.id, chosen)
        point.open(body.name, body.location, body.throughput, chosen)


def change_point(unit: UnitOfWork, point: str, body: PointChangeIn) -> dict[str, Any]:
    """Change a point's throughput, volunteers or place."""
    compound = unit.compound
    with unit:
        found = unit.load(SamplingPoint, global_id(compound, point))
        chosen = None if body.volunteers is None else [global_id(compound, v) for v in body.volunteers]
        if chosen is not None and not found.closed:
            _check_volunteers(unit, found.id, chosen)
        found.change(name=body.name, location=body.location, throughput=body.throughput, volunteers=chosen)
    return {"point": point, "throughput": found.throughput, "volunteers": [local_id(v) for v in found.volunteers]}


def close_point(unit: UnitOfWork, point: str, reason: str) -> None:
    with unit:
        unit.load(SamplingPoint, global_id(unit.compound, point)).close(reason)


def _residents_per_building(session: Session, compound: str) -> dict[str, int]:
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


def list_points(runtime: Runtime, compound: str) -> dict[str, Any]:
    """Sampling points, their buildings and residents, and the buildings no point serves."""
    with runtime.database.reading() as session:
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


def _propose(session: Session, compound: str) -> tuple[dict[str, list[str]], dict[str, int]]:
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


def proposal(runtime: Runtime, compound: str) -> dict[str, Any]:
    """A building→point assignment balancing residents."""
    with runtime.database.reading() as session:
        proposed, people = _propose(session, compound)
    return _assignment_view(proposed, people)


def adopt_proposal(unit: UnitOfWork) -> dict[str, Any]:
    with unit:
        proposed, people = _propose(unit.session, unit.compound)
        assignment = unit.load_or_new(PointAssignment, unit.compound)
        assignment.reassign(
            proposed, open_points=_open_points(unit), known_buildings=_known_buildings(unit), proposed=True
        )
    return _assignment_view(proposed, people)


def assign(unit: UnitOfWork, point: str, body: BuildingsIn) -> None:
    """Buildings named move to this point; buildings this point served and not named are unassigned."""
    with unit:
        assignment = unit.load_or_new(PointAssignment, unit.compound)
        assignment.assign(
            global_id(unit.compound, point),
            [global_id(unit.compound, b) for b in body.buildings],
            open_points=_open_points(unit),
            known_buildings=_known_buildings(unit),
        )


def point_key(runtime: Runtime, compound: str, point: str, volunteer: str | None) -> dict[str, Any]:
    """A key that lets sampling volunteers call next and record samples at this point only. Issued to a
    volunteer, it is theirs (and ends when they are stood down); without one, it belongs to the point's device."""
    with runtime.database.unit_of_work() as session:
        known = session.execute(select(points.c.open).where(points.c.point == global_id(compound, point))).scalar()
        if known is None:
            raise SamplingPoint.unknown(point)
        if volunteer is None:
            holder = Holder("system", f"{global_id(compound, point)} device")
        else:
            serving = session.execute(
                select(volunteers.c.serving).where(volunteers.c.volunteer == global_id(compound, volunteer))
            ).scalar()
            if not serving:
                state = "was stood down" if serving is not None else "is not enlisted"
                raise Invalid(f"volunteer {volunteer} {state}: no key is issued to them", code="volunteer-not-serving")
            holder = Holder("volunteer", global_id(compound, volunteer))
        issued = issue_key(session, r.SAMPLING_VOLUNTEER, compound, label=f"sampling point {point}", holder=holder)
        session.execute(
            key_bindings.insert().values(
                key_id=issued.caller.key_id, compound=compound, point=global_id(compound, point), household=None
            )
        )
    return {"key": issued.key, "role": r.SAMPLING_VOLUNTEER, "point": point, "volunteer": volunteer}
