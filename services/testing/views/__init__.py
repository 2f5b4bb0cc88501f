"""Read models of the testing service, rebuilt by ``juwei replay testing``.

``register`` is fed by the residents service's events (through the inbox): who lives on which floor of
which building, and who is bedridden. Every other projection is fed by the service's own events: ``points``,
``rounds`` (plans and calls), ``results`` (samples, tubes, self-reports, each resident's status), ``cases``
(and disinfections). ``planning`` is what the call planner reads of them. Ids are the district-wide ids the
events carry (``<compound>:<id>``); times are stored in UTC.
"""

from __future__ import annotations

from contracts.access import CompoundPlacements, Departures
from juwei.projection import Projection
from services.testing.views.cases import (
    Cases,
    Disinfections,
)
from services.testing.views.planning import (
    capacities_of,
    layouts_of,
)
from services.testing.views.points import (
    Points,
)
from services.testing.views.register import (
    Register,
    Volunteers,
)
from services.testing.views.results import (
    Results,
)
from services.testing.views.rounds import (
    Rounds,
)
from services.testing.views.schema import (
    Id,
    antigen,
    buildings,
    bulk_upsert,
    calls,
    cases,
    close_contacts,
    disinfections,
    door_to_door,
    households,
    key_bindings,
    own_event,
    plans,
    point_buildings,
    point_of,
    points,
    residents,
    round_residents,
    rounds,
    samples,
    tables,
    tubes,
    utc,
    volunteers,
)


def projections() -> list[Projection]:
    return [
        Register(),
        Volunteers(),
        Points(),
        Rounds(),
        Results(),
        Cases(),
        Disinfections(),
        Departures(),
        CompoundPlacements(),
    ]


__all__ = [
    "Cases",
    "Disinfections",
    "Id",
    "Points",
    "Register",
    "Results",
    "Rounds",
    "Volunteers",
    "antigen",
    "buildings",
    "bulk_upsert",
    "calls",
    "capacities_of",
    "cases",
    "close_contacts",
    "disinfections",
    "door_to_door",
    "households",
    "key_bindings",
    "layouts_of",
    "own_event",
    "plans",
    "point_buildings",
    "point_of",
    "points",
    "projections",
    "residents",
    "round_residents",
    "rounds",
    "samples",
    "tables",
    "tubes",
    "utc",
    "volunteers",
]
