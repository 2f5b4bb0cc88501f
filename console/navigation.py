"""Which pages each role has, in the order of the menu (path, English label: a msgid of the catalogues).

A page's own route checks the role again (``console.dependencies.role_in``); this table only draws the menu.
"""

from __future__ import annotations

from console.i18n import N_
from contracts.roles import (
    COMMITTEE_STAFF,
    HOUSEHOLD,
    INFORMATION_OFFICER,
    LOGISTICS_VOLUNTEER,
    SAMPLING_VOLUNTEER,
)

STAFF_ROLES = (COMMITTEE_STAFF,)
VOLUNTEER_ROLES = (INFORMATION_OFFICER, LOGISTICS_VOLUNTEER, SAMPLING_VOLUNTEER)
INVITED_ROLES = (*VOLUNTEER_ROLES, HOUSEHOLD)

MENU: dict[str, list[tuple[str, str]]] = {
    COMMITTEE_STAFF: [
        ("/overview", N_("Overview")),
        ("/round", N_("Testing round")),
        ("/supplies", N_("Supplies")),
        ("/questions", N_("Questions")),
        ("/register", N_("Register")),
        ("/exports", N_("Exports")),
        ("/invitations/new", N_("Invite")),
    ],
    INFORMATION_OFFICER: [
        ("/me", N_("My building")),
        ("/phone/untested", N_("Untested")),
        ("/phone/survey", N_("Survey lists")),
        ("/phone/calls", N_("Calls to make")),
    ],
    LOGISTICS_VOLUNTEER: [
        ("/me", N_("My building")),
        ("/phone/deliveries", N_("Deliveries")),
        ("/phone/cards", N_("Medicine cards")),
    ],
    SAMPLING_VOLUNTEER: [("/me", N_("My building")), ("/phone/point", N_("Sampling point"))],
    HOUSEHOLD: [("/me", N_("My building")), ("/phone/home", N_("Self-test"))],
}


def home_of(role: str) -> str:
    """Where a person lands after signing in."""
    entries = MENU.get(role)
    return entries[0][0] if entries else "/signin"
