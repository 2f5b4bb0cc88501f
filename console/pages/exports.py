"""Staff exports: the page that lists them, and each one as an .xlsx download (Chinese headings by default)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from console.dependencies import Console, PageRefused, client_for, role_in
from console.exports import EXPORTS, Translate
from console.i18n import N_
from console.navigation import STAFF_ROLES
from console.runtime import ConsoleRuntime
from console.services_client import ServiceClient, ServiceProblem
from console.sessions import Person
from console.workbooks import XLSX_MEDIA_TYPE, attachment, workbook_bytes

router = APIRouter()
Staff = Annotated[Person, Depends(role_in(*STAFF_ROLES))]
RoundQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


def translator(console: ConsoleRuntime, request: Request) -> Translate:
    locale = request.state.locale

    def translate(message: str, **values: Any) -> str:
        text = console.pages.gettext(locale, message)
        return text % values if values else text

    return translate


async def services_today(client: ServiceClient, compound: str) -> str:
    """The compound's day as the services count it (they may run on a set day), else this machine's."""
    try:
        return (await client.get("residents", f"/compounds/{compound}/zones")).get("today") or date.today().isoformat()
    except ServiceProblem:
        return date.today().isoformat()


@router.get("/exports", response_class=HTMLResponse)
async def exports_page(request: Request, console: Console, person: Staff) -> HTMLResponse:
    client = client_for(request, console, person)
    try:
        rounds = (await client.get("testing", f"/compounds/{person.compound}/rounds"))["rounds"]
    except ServiceProblem:
        rounds = []
    return console.pages.render(request, "staff/exports.html", {"exports": list(EXPORTS.values()), "rounds": rounds})


@router.get("/exports/{name}.xlsx")
async def export(name: str, request: Request, console: Console, person: Staff, round: RoundQuery = None) -> Response:
    found = EXPORTS.get(name)
    if found is None:
        raise PageRefused(404, N_("Not found."))
    client = client_for(request, console, person)
    translate = translator(console, request)
    if found.needs_round:
        table = await found.make(client, person.compound, translate, round)  # type: ignore[call-arg]
    else:
        table = await found.make(client, person.compound, translate)
    day = await services_today(client, person.compound)
    content = workbook_bytes(table)
    filename = f"{table.title}-{person.compound}-{day}.xlsx"
    return Response(
        content,
        media_type=XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": attachment(filename, f"juwei-{name}-{person.compound}-{day}.xlsx"),
            "Cache-Control": "no-store",
        },
    )
