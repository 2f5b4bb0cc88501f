"""The information officer's call list on the phone: the households of their building that no group message
reaches (no smartphone, or nobody in the group), one entry per urgent message, with what to say and a "done"
mark. Only the officer's own building; the list is notify's (``/compounds/{c}/buildings/{b}/calls``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from console.dependencies import Console, LocalId, building_of, checked_form, client_for, form_segment, role_in
from console.pages.phone import first_building, phone_page
from console.services_client import ServiceProblem
from console.sessions import Person
from contracts.roles import INFORMATION_OFFICER

router = APIRouter()
Officer = Annotated[Person, Depends(role_in(INFORMATION_OFFICER))]
# The times an officer reads are the compound's (Shanghai), whatever the server's zone.
LOCAL = ZoneInfo("Asia/Shanghai")


def _clock(moment: str) -> str:
    """An ISO time from notify as the officer says it: 月-日 时:分, local."""
    return datetime.fromisoformat(moment).astimezone(LOCAL).strftime("%m-%d %H:%M")


@router.get("/phone/calls")
def my_calls(person: Officer) -> Response:
    return RedirectResponse(f"/phone/calls/{first_building(person)}", status_code=303)


@router.get("/phone/calls/{building}", response_class=HTMLResponse)
async def calls(request: Request, console: Console, person: Officer, building: LocalId) -> HTMLResponse:
    """The open calls, most overdue first as notify lists them; a notify that does not answer leaves a notice."""
    building_of(person, building)
    client = client_for(request, console, person)
    try:
        listed = await client.get("notify", f"/compounds/{person.compound}/buildings/{building}/calls")
    except ServiceProblem:  # notify away: the page says so instead of failing
        listed = None
    open_calls: list[dict[str, Any]] = [
        {**call, "due": _clock(call["due_at"])} for call in (listed["calls"] if listed else [])
    ]
    context = {
        "building": building,
        "calls": open_calls,
        "unavailable": listed is None,
        "done": request.query_params.get("done"),
    }
    return phone_page(console, request, "phone/calls.html", context)


@router.post("/phone/calls/{building}/done")
async def done(
    request: Request,
    console: Console,
    person: Officer,
    building: LocalId,
    form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    """The household was told; back to the list, which no longer shows the call."""
    building_of(person, building)
    call = form_segment(form, "call")
    await client_for(request, console, person).post("notify", f"/compounds/{person.compound}/calls/{call}/done", {})
    return RedirectResponse(f"/phone/calls/{building}?done={call}", status_code=303)
