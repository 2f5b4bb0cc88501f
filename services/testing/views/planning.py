"""What the call planner reads of the read models: the layout of each building (who lives on which floor, who is
bedridden) and the capacity of each point of a round.
"""

from __future__ import annotations

from sqlalchemy import (
    select,
)

from contracts.ids import local_id
from juwei.aggregate import Conflict
from juwei.session import Session
from services.testing.domain import BuildingLayout, Occupant, PointCapacity
from services.testing.views.schema import buildings, households, point_buildings, points, residents


def layouts_of(session: Session, compound: str) -> list[BuildingLayout]:
    """Every building of the compound with who lives on which floor, as the planner needs it."""
    people: dict[str, list[Occupant]] = {}
    rows = session.execute(
        select(
            residents.c.resident,
            residents.c.household,
            residents.c.building,
            residents.c.bedridden,
            households.c.floor,
            households.c.room,
        )
        .join(households, households.c.household == residents.c.household)
        .where(residents.c.compound == compound, residents.c.present.is_(True))
    )
    for resident, household, building, bedridden, floor, room in rows:
        people.setdefault(building, []).append(Occupant(resident, household, floor, bool(bedridden), room))
    return [
        BuildingLayout(
            building=row.building,
            floors=row.floors,
            lifts=row.lifts,
            lift_capacity=row.lift_capacity,
            occupants=tuple(people.get(row.building, ())),
        )
        for row in session.execute(select(buildings).where(buildings.c.compound == compound))
    ]


def capacities_of(session: Session, compound: str, chosen: list[str]) -> list[PointCapacity]:
    """The round's points with their throughput and the buildings each serves; a closed point is refused."""
    rows = {
        row.point: row
        for row in session.execute(select(points).where(points.c.compound == compound, points.c.point.in_(chosen)))
    }
    closed = [local_id(p) for p in chosen if p not in rows or not rows[p].open]
    if closed:
        raise Conflict(f"sampling points {', '.join(closed)} are not open", code="point-closed")
    served: dict[str, list[str]] = {}
    for point, building in session.execute(
        select(point_buildings.c.point, point_buildings.c.building).where(point_buildings.c.compound == compound)
    ):
        served.setdefault(point, []).append(building)
    return [PointCapacity(p, rows[p].throughput, tuple(served.get(p, ()))) for p in chosen]
