"""The register: upload a sheet, residents previews it, a mapping step for headings it doesn't know, import.

The import is all rows or none (residents' one unit of work); a refusal lists every bad row with its line and
reason, worded by residents in the person's language. Between the preview and the import the sheet waits in
this process's memory (``PENDING``), for its uploader only, for ``PENDING_SECONDS`` at most.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData, UploadFile

from console.dependencies import Console, checked_form, client_for, role_in
from console.i18n import N_
from console.navigation import STAFF_ROLES
from console.services_client import ServiceProblem, fetch_file, send_file
from console.sessions import Person

router = APIRouter()
Staff = Annotated[Person, Depends(role_in(*STAFF_ROLES))]
KINDS = ("residents", "buildings")
PENDING_SECONDS = 30 * 60
PENDING_MAX = 20
MAX_BYTES = 10 * 1024 * 1024
SKIP = "-"

# The import's fields (residents' names for them), as msgids for the mapping step's choices.
FIELDS = {
    "building": N_("Building"), "unit": N_("Unit"), "floor": N_("Floor"), "room": N_("Room"),
    "household": N_("Household"), "resident": N_("Resident"), "name": N_("Name"), "phone": N_("Phone"),
    "id_number": N_("ID-card number"), "birth_year": N_("Year of birth"), "age": N_("Age"), "sex": N_("Sex"),
    "relationship": N_("Relationship"), "representative": N_("Representative"),
    "regular_medication": N_("Regular medication"), "mobility_impaired": N_("Mobility impaired"),
    "bedridden": N_("Bedridden"), "pregnant": N_("Pregnant"), "infant": N_("Infant"), "note": N_("Note"),
    "number": N_("Building number"), "floors": N_("Floors"), "rooms_per_floor": N_("Rooms per floor"),
    "lifts": N_("Lifts"), "lift_capacity": N_("Lift capacity"),
}  # fmt: skip
PARTS = {"buildings": N_("Buildings"), "households": N_("Households"), "residents": N_("Residents")}
KIND_LABELS = {"residents": N_("Households and residents"), "buildings": N_("Buildings")}


@dataclass
class PendingSheet:
    """An uploaded sheet between its preview and its import."""

    owner: str  # the session's person (staff id) who uploaded it
    kind: str
    filename: str
    media_type: str
    content: bytes
    headings: list[str]
    stored_at: float


PENDING: dict[str, PendingSheet] = {}


def _keep(sheet: PendingSheet) -> str:
    now = time.monotonic()
    for token in [t for t, s in PENDING.items() if now - s.stored_at > PENDING_SECONDS]:
        PENDING.pop(token, None)
    while len(PENDING) >= PENDING_MAX:  # the oldest make room: memory stays bounded
        PENDING.pop(min(PENDING, key=lambda t: PENDING[t].stored_at))
    token = secrets.token_urlsafe(18)
    PENDING[token] = sheet
    return token


def _owner(person: Person) -> str:
    return f"{person.compound}/{person.role}/{person.key_id}"


def _kind(value: Any) -> str:
    return value if value in KINDS else "residents"


def _page(request: Request, console: Console, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    values = {"kinds": KIND_LABELS, "parts": PARTS, "kind": "residents", "fields": FIELDS, "skip": SKIP, **context}
    return console.pages.render(request, "staff/register.html", values, status=status)


def _problem_context(problem: ServiceProblem) -> dict[str, Any]:
    """What the page shows of a refusal: residents' title and detail, its bad rows, its missing headings."""
    body = problem.body
    return {
        "problem": {"status": problem.status, "title": problem.title, "detail": problem.detail, "code": problem.code},
        "errors": body.get("errors") if isinstance(body.get("errors"), list) else [],
        "error_count": body.get("error_count"),
        "missing": body.get("missing") if isinstance(body.get("missing"), list) else [],
    }


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request, console: Console, person: Staff) -> HTMLResponse:
    return _page(request, console, {"step": "upload"})


@router.get("/register/template")
async def template(
    request: Request, console: Console, person: Staff, kind: Annotated[str, Query()] = "residents"
) -> Response:
    """residents' own template, passed through (its file name and headings as residents made them)."""
    answer = await fetch_file(
        client_for(request, console, person), "residents", f"/compounds/{person.compound}/imports/template",
        kind=_kind(kind),
    )  # fmt: skip
    headers = {"Cache-Control": "no-store"}
    if "content-disposition" in answer.headers:
        headers["Content-Disposition"] = answer.headers["content-disposition"]
    return Response(answer.content, media_type=answer.headers.get("content-type"), headers=headers)


@router.post("/register/preview", response_class=HTMLResponse)
async def preview(
    request: Request, console: Console, person: Staff, form: Annotated[FormData, Depends(checked_form)]
) -> HTMLResponse:
    kind = _kind(form.get("kind"))
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, console, {"step": "upload", "kind": kind,
                                        "message": N_("Choose a spreadsheet file first.")}, 422)  # fmt: skip
    content = await upload.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        return _page(request, console, {"step": "upload", "kind": kind, "message": N_("The file is too large.")}, 413)
    media_type = upload.content_type or "application/octet-stream"
    client = client_for(request, console, person)
    try:
        found = await send_file(
            client, "residents", f"/compounds/{person.compound}/imports/preview",
            (upload.filename, content, media_type), params={"kind": kind},
        )  # fmt: skip
    except ServiceProblem as problem:
        if problem.status == 0 or problem.status >= 500:
            raise
        return _page(request, console, {"step": "upload", "kind": kind, **_problem_context(problem)}, problem.status)
    sheet = PendingSheet(_owner(person), kind, upload.filename, media_type, content,
                         [h["heading"] for h in found["headings"]], time.monotonic())  # fmt: skip
    token = _keep(sheet)
    return _page(request, console, {"step": "mapping", "kind": kind, "token": token, "preview": found,
                                    "suggested": suggestions(found), "filename": upload.filename})  # fmt: skip


def suggestions(preview: dict[str, Any]) -> dict[str, str]:
    """The select of each unknown heading, prefilled: residents' reading where it has one, else the required
    fields still missing, in order (the committee's unknown heading is most often a required column)."""
    missing = [m for m in preview.get("missing", [])]
    chosen: dict[str, str] = {}
    for heading in preview["headings"]:
        if heading.get("field"):
            chosen[heading["heading"]] = heading["field"]
        elif missing:
            chosen[heading["heading"]] = missing.pop(0)
        else:
            chosen[heading["heading"]] = SKIP
    return chosen


@router.post("/register/import", response_class=HTMLResponse)
async def import_sheet(
    request: Request, console: Console, person: Staff, form: Annotated[FormData, Depends(checked_form)]
) -> HTMLResponse:
    token = form.get("token")
    sheet = PENDING.get(token) if isinstance(token, str) else None
    if sheet is None or sheet.owner != _owner(person):
        expired = N_("The uploaded sheet has expired. Please upload it again.")
        return _page(request, console, {"step": "upload", "message": expired}, 410)
    mapping: dict[str, str | None] = {}
    for index, heading in enumerate(sheet.headings):
        chosen = form.get(f"map-{index}")
        if isinstance(chosen, str) and chosen:
            mapping[heading] = None if chosen == SKIP else chosen
    # One import per sheet and mapping: a form sent twice imports once; a changed mapping is a new try.
    chosen_mapping = json.dumps(mapping, ensure_ascii=False, sort_keys=True)
    attempt = hashlib.sha256(chosen_mapping.encode()).hexdigest()[:16]
    client = client_for(request, console, person)
    try:
        result = await send_file(
            client, "residents", f"/compounds/{person.compound}/import",
            (sheet.filename, sheet.content, sheet.media_type), params={"kind": sheet.kind},
            fields={"mapping": chosen_mapping}, idempotency_key=f"{token}-{attempt}",
        )  # fmt: skip
    except ServiceProblem as problem:
        if problem.status == 0 or problem.status >= 500:
            raise
        # The sheet stays pending: the person may change the mapping, or fix the file and upload it again.
        return _page(request, console, {"step": "refused", "kind": sheet.kind, "filename": sheet.filename,
                                        **_problem_context(problem)}, problem.status)  # fmt: skip
    PENDING.pop(token, None)  # type: ignore[arg-type]
    return _page(request, console, {"step": "done", "kind": sheet.kind, "filename": sheet.filename, "result": result})
