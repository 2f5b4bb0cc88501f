"""The console's pages, one module per area; each has a ``router``, included by ``console.app`` in this order."""

from __future__ import annotations

from console.pages import (
    actions,
    building,
    calls,
    exports,
    household,
    invitations,
    overview,
    phone,
    questions,
    register,
    round,
    session,
    subdistrict,
    supplies,
    survey,
)

ROUTERS = [
    session.router,
    overview.router,
    invitations.router,
    building.router,
    questions.router,
    round.router,
    supplies.router,
    register.router,
    exports.router,
    actions.router,
    phone.router,
    survey.router,
    calls.router,
    household.router,
    subdistrict.router,
]
