"""A household's phone page: its building's zone and "when can we go out", and the antigen self-report with a
photo for the newest antigen day (sent as the household, once per form: the form's own command id)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from console.dependencies import Console, checked_form, client_for, form_text, role_in
from console.i18n import N_
from console.pages.overview import ZONES
from console.pages.phone import first_building, latest_round
from console.phone_actions import LOCAL_ID, own_id
from console.services_client import ServiceClient, ServiceProblem, gather_settled
from console.sessions import Person
from contracts.roles import HOUSEHOLD

router = APIRouter()
Household = Annotated[Person, Depends(role_in(HOUSEHOLD))]
RESULTS = {"negative": N_("negative"), "positive": N_("positive"), "invalid": N_("invalid (no line)")}
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}
PHOTO_LIMIT = 5 * 1024 * 1024


async def _home_context(client: ServiceClient, person: Person) -> dict[str, Any]:
    building = first_building(person)
    household = own_id(person)
    found = await gather_settled(
        {
            "zone": client.get("residents", f"/compounds/{person.compound}/buildings/{building}/zone"),
            "round": latest_round(client, person.compound, "antigen"),
        }
    )
    chosen = found["round"] if isinstance(found["round"], dict) else None
    members: list[dict[str, Any]] = []
    if chosen is not None:
        path = f"/compounds/{person.compound}/rounds/{chosen['round']}/households/{household}/antigen"
        reports = await gather_settled({"reports": client.get("testing", path)})
        if isinstance(reports["reports"], dict):
            members = reports["reports"]["members"]
    return {
        "building": building,
        "household": household,
        "zone": found["zone"] if isinstance(found["zone"], dict) else None,
        "zones": ZONES,
        "round": chosen,
        "members": members,
        "results": RESULTS,
        "command_id": str(uuid.uuid4()),
    }


@router.get("/phone/home", response_class=HTMLResponse)
async def home(request: Request, console: Console, person: Household, reported: str | None = None) -> HTMLResponse:
    context = await _home_context(client_for(request, console, person), person)
    return console.pages.render(request, "phone/home.html", {**context, "reported": reported is not None})


@router.post("/phone/home/self-report", response_class=HTMLResponse)
async def self_report(
    request: Request, console: Console, person: Household, form: Annotated[FormData, Depends(checked_form)]
) -> Response:
    """The self-report goes to testing as multipart, with the form's command id as its Idempotency-Key: a
    form sent twice (a slow network, a second tap) is recorded once."""
    client = client_for(request, console, person)
    resident, result, round_, command = (form_text(form, n) for n in ("resident", "result", "round", "command_id"))
    photo = form.get("photo")
    error: str | None = None
    try:
        command = str(uuid.UUID(command))
    except ValueError:
        error = N_("This form has expired. Please go back, reload the page and try again.")
    if error is None and not (LOCAL_ID.fullmatch(resident) and LOCAL_ID.fullmatch(round_) and result in RESULTS):
        error = N_("Please choose who was tested and the result.")
    files: dict[str, tuple[str, bytes, str]] = {}
    if error is None and isinstance(photo, UploadFile) and photo.filename:
        content = await photo.read(PHOTO_LIMIT + 1)
        if len(content) > PHOTO_LIMIT:
            error = N_("The file is too large.")
        elif (photo.content_type or "") not in PHOTO_TYPES:
            error = N_("The photo must be a JPEG, PNG or WebP picture.")
        else:
            files["photo"] = (photo.filename, content, photo.content_type or "image/jpeg")
    status = 422
    if error is None:
        path = f"/compounds/{person.compound}/rounds/{round_}/households/{own_id(person)}/antigen"
        try:
            await client.send(
                "POST", "testing", path, data={"resident": resident, "result": result}, files=files or None,
                idempotency_key=command,
            )  # fmt: skip
        except ServiceProblem as problem:
            if not 400 <= problem.status < 500:
                raise
            status = problem.status
            error = problem.detail or problem.title or N_("Some of what was entered is not valid.")
        else:
            return RedirectResponse("/phone/home?reported=1", status_code=303)
    context = await _home_context(client, person)
    shown = console.pages.gettext(request.state.locale, error or "")
    return console.pages.render(request, "phone/home.html", {**context, "error": shown}, status=status)
