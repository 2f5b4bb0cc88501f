"""Sampling points and the buildings each serves."""

from __future__ import annotations

import json

from sqlalchemy import (
    delete,
    update,
)

from contracts import testing as ev
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.testing.views.schema import point_buildings, points


class Points(Projection):
    """Sampling points and the buildings each serves."""

    name = "points"
    tables = (points, point_buildings)
    reads = (ev.SamplingPointOpened, ev.SamplingPointChanged, ev.SamplingPointClosed, ev.BuildingsAssigned)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, envelope.data)
        if isinstance(event, ev.SamplingPointOpened | ev.SamplingPointChanged):
            upsert(
                session,
                points,
                {"point": event.point},
                {
                    "compound": envelope.compound,
                    "name": event.name,
                    "location": event.location,
                    "throughput": event.throughput,
                    "volunteers": json.dumps(event.volunteers),
                    "open": True,
                },
            )
        elif isinstance(event, ev.SamplingPointClosed):
            session.execute(update(points).where(points.c.point == event.point).values(open=False))
        elif isinstance(event, ev.BuildingsAssigned):
            session.execute(delete(point_buildings).where(point_buildings.c.point == event.point))
            for building in event.buildings:
                session.execute(delete(point_buildings).where(point_buildings.c.building == building))
                session.execute(
                    point_buildings.insert().values(
                        building=building, compound=envelope.compound, point=event.point, proposed=event.proposed
                    )
                )
