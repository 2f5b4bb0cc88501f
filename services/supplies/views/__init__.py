"""Read models of the supplies service, rebuilt by ``juwei replay supplies``.

``Register`` is this service's own copy of what it needs from ``juwei.residents`` (buildings, households,
residents' needs flags, logistics groups and information officers), fed by the consumer: supplies never
asks the residents service. The others project supplies' own events: ``Deliveries`` (batches, plans, shift
calls, shares), ``Custody`` (medicine requests and cards) and ``Ledger`` (donations). Ids are the district-wide
ids the events carry (``<compound>:<id>``); the API speaks in ids local to a compound.
"""

from __future__ import annotations

from contracts.access import CompoundPlacements, Departures
from juwei.projection import Projection
from services.supplies.views.custody import (
    Custody,
)
from services.supplies.views.deliveries import (
    Deliveries,
)
from services.supplies.views.ledger import (
    Ledger,
)
from services.supplies.views.register import (
    Register,
)
from services.supplies.views.schema import (
    FLAGS,
    HEALTH,
    batches,
    buildings,
    card_history,
    cards,
    donation_batches,
    donation_items,
    donations,
    households,
    medicine_requests,
    own_event,
    residents,
    shares,
    shift_calls,
    tables,
    volunteer_roles,
)


def projections() -> list[Projection]:
    return [Register(), Deliveries(), Custody(), Ledger(), Departures(), CompoundPlacements()]


__all__ = [
    "FLAGS",
    "HEALTH",
    "Custody",
    "Deliveries",
    "Ledger",
    "Register",
    "batches",
    "buildings",
    "card_history",
    "cards",
    "donation_batches",
    "donation_items",
    "donations",
    "households",
    "medicine_requests",
    "own_event",
    "projections",
    "residents",
    "shares",
    "shift_calls",
    "tables",
    "volunteer_roles",
]
