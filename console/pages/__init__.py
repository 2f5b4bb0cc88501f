"""The console's pages, one module per area; each has a ``router``, included by ``console.app`` in this order."""

from __future__ import annotations

from console.pages import (
    actions,
    building,
    household,
    invitations,
    overview,
    phone,
    questions,
    round,
    session,
    supplies,
)

ROUTERS = [
    session.router,
    overview.router,
    invitations.router,
    building.router,
    questions.router,
    round.router,
    supplies.router,
    actions.router,
    phone.router,
    household.router,
]
