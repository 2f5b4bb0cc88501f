"""The volunteers' phone pages: the logistics checklist, the sampling point's calls, the information officer's
lists. Their taps go to the phone's outbox (``static/outbox.js``) and on to ``POST /api/actions``.

Each page shows only the person's own building (``building_of``); the services check their key again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.dependencies import Console, PageRefused, building_of, client_for, role_in
from console.i18n import N_
from console.phone_actions import own_id
from console.services_client import ServiceClient, ServiceProblem, gather_settled
from console.sessions import Person
from contracts.roles import INFORMATION_OFFICER, LOGISTICS_VOLUNTEER, SAMPLING_VOLUNTEER

router = APIRouter()
Logistics = Annotated[Person, Depends(role_in(LOGISTICS_VOLUNTEER))]
Officer = Annotated[Person, Depends(role_in(INFORMATION_OFFICER))]
Sampler = Annotated[Person, Depends(role_in(SAMPLING_VOLUNTEER))]
# A delivery task in one of these states is finished: no more buttons for it.
FINISHED = {"delivered", "collected", "exchanged", "returned_to_stock"}
STATUSES = {
    "pending": N_("to deliver"),
    "delivered": N_("delivered"),
    "failed": N_("nobody answered"),
    "collected": N_("collected"),
    "exchanged": N_("exchanged"),
    "returned_to_stock": N_("returned to stock"),
}
HOLDERS = {
    "household": N_("at home"),
    "volunteer": N_("with volunteer %(id)s"),
    "subdistrict": N_("with the subdistrict (%(id)s)"),
    "staff": N_("with the committee (%(id)s)"),
}
REASONS = {"no_one_home": N_("nobody answered"), "refused": N_("refused"), "wrong_items": N_("wrong items")}


def first_building(person: Person) -> str:
    if not person.buildings:
        raise PageRefused(404, N_("No building is named for you. Ask the committee."))
    return person.buildings[0]


def room_of(floor: int, room: int) -> str:
    """The flat as people say it: floor 15, room 2 is 1502."""
    return f"{floor}{room:02d}"


def phone_page(console: Console, request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    return console.pages.render(request, template, {"room_of": room_of, **context})


@router.get("/phone/deliveries")
def my_deliveries(person: Logistics) -> Response:
    return RedirectResponse(f"/phone/deliveries/{first_building(person)}", status_code=303)


@router.get("/phone/deliveries/{building}", response_class=HTMLResponse)
async def deliveries(request: Request, console: Console, person: Logistics, building: str) -> HTMLResponse:
    """The floor-by-floor checklist of the building's open deliveries: delivered, or nobody answered."""
    building_of(person, building)
    client = client_for(request, console, person)
    found = await client.get("supplies", f"/compounds/{person.compound}/buildings/{building}/deliveries")
    for delivery in found["deliveries"]:
        tasks = [t for floor in delivery["floors"] for t in floor["households"]]
        delivery["count"] = len(tasks)
        delivery["done"] = sum(1 for t in tasks if t["status"] in FINISHED)
    context = {"building": building, "deliveries": found["deliveries"], "finished": FINISHED, "statuses": STATUSES}
    return phone_page(console, request, "phone/deliveries.html", context)


async def latest_round(client: ServiceClient, compound: str, kind: str) -> dict[str, Any] | None:
    """The newest round of a kind (``pcr`` or ``antigen``), if any."""
    rounds = (await client.get("testing", f"/compounds/{compound}/rounds"))["rounds"]
    return next((r for r in rounds if r["kind"] == kind), None)


@router.get("/phone/untested")
def my_untested(person: Officer) -> Response:
    return RedirectResponse(f"/phone/untested/{first_building(person)}", status_code=303)


@router.get("/phone/untested/{building}", response_class=HTMLResponse)
async def untested(request: Request, console: Console, person: Officer, building: str) -> HTMLResponse:
    """Who in the building has not been tested in the latest round, who must be sampled again or at home,
    and (where supplies lets the officer read it) who still waits for a delivery."""
    building_of(person, building)
    client = client_for(request, console, person)
    chosen = await latest_round(client, person.compound, "pcr")
    lists: dict[str, Any] = {}
    if chosen is not None:
        base = f"/compounds/{person.compound}/rounds/{chosen['round']}"
        lists = await gather_settled(
            {
                "coverage": client.get("testing", f"{base}/coverage", building=building),
                "visits": client.get("testing", f"{base}/door-to-door", building=building),
            }
        )
    follow_ups = await gather_settled(
        {"supplies": client.get("supplies", f"/compounds/{person.compound}/follow-ups", building=building)}
    )
    coverage = lists.get("coverage")
    floors = []
    summary = None
    if isinstance(coverage, dict):
        mine = [b for b in coverage["buildings"] if b["building"] == building]
        if mine:
            summary, floors = mine[0], mine[0]["floors"]
    visits = lists.get("visits")
    supplies = follow_ups["supplies"]
    context = {
        "building": building,
        "round": chosen,
        "summary": summary,
        "floors": floors,
        "visits": visits["visits"] if isinstance(visits, dict) else None,
        "follow_ups": supplies["follow_ups"] if isinstance(supplies, dict) else None,
        # A list the service keeps from this role (403) is left out; one it could not give is said to be missing.
        "unavailable": [
            name for name, v in {**lists, **follow_ups}.items() if isinstance(v, ServiceProblem) and v.status != 403
        ],
        "reasons": REASONS,
    }
    return phone_page(console, request, "phone/untested.html", context)


@router.get("/phone/point", response_class=HTMLResponse)
async def point(request: Request, console: Console, person: Sampler, point: str | None = None) -> HTMLResponse:
    """The sampling point's calling plan for the latest round: what was called, what comes next, and the
    button that calls the next floors down (the key is bound to one point; the service refuses any other)."""
    client = client_for(request, console, person)
    chosen = await latest_round(client, person.compound, "pcr")
    plans: list[dict[str, Any]] = []
    if chosen is not None:
        plan = await client.get("testing", f"/compounds/{person.compound}/rounds/{chosen['round']}/plan")
        plans = plan["points"]
    shown = [p for p in plans if point is None or p["point"] == point]
    return phone_page(
        console, request, "phone/point.html", {"round": chosen, "plans": shown, "all_points": plans, "point": point}
    )


@router.get("/phone/cards")
def my_cards(person: Logistics) -> Response:
    return RedirectResponse(f"/phone/cards/{first_building(person)}", status_code=303)


@router.get("/phone/cards/{building}", response_class=HTMLResponse)
async def cards(request: Request, console: Console, person: Logistics, building: str) -> HTMLResponse:
    """Medicine runs: where each medical-insurance card of the building is, and its next step — collected from
    the household, handed to the subdistrict's runner (named by both: the volunteer gives, the runner's id is
    entered), taken back from them, and returned home."""
    building_of(person, building)
    client = client_for(request, console, person)
    found = await client.get("supplies", f"/compounds/{person.compound}/cards", building=building)
    context = {"building": building, "cards": found["cards"], "me": own_id(person), "holders": HOLDERS}
    return phone_page(console, request, "phone/cards.html", context)
