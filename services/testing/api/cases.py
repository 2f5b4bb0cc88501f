"""Cases and transfers (转运), the building's answer to "when will the case be transferred?", disinfection."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import roles as r
from juwei.auth import CompoundId, LocalId, require
from juwei.callers import Caller
from juwei.problems import Problem
from services.testing.api.common import Command, album_of, global_id, local_id, local_time, now, runtime_of, shown
from services.testing.domain import MAX_PHOTOS, Case, Disinfection
from services.testing.views import buildings, cases, close_contacts, disinfections

router = APIRouter(tags=["cases and disinfection"])
StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Disinfectors = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER))]
Building = Annotated[
    Caller,
    Depends(
        require(
            *r.STAFF,
            r.INFORMATION_OFFICER,
            r.SAMPLING_VOLUNTEER,
            r.LOGISTICS_VOLUNTEER,
            r.HOUSEHOLD,
            r.SUBDISTRICT_STAFF,
        )
    ),
]


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"scheduled_at": "2022-04-13T14:00"}]})
    scheduled_at: datetime = Field(description="Without an offset: the compound's wall-clock time")


class TransferredIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"facility": "central isolation"}]})
    transferred_at: datetime | None = Field(None, description="Default: now")
    facility: str = Field("", max_length=200)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"outcome": "recovered"}]})
    outcome: Literal["returned", "recovered"]
    closed_at: datetime | None = Field(None, description="Default: now")


def _case_row(session: Session, compound: str, case: str) -> Any:
    row = (
        session.execute(select(cases).where(cases.c.case == global_id(compound, case), cases.c.compound == compound))
        .mappings()
        .first()
    )
    if row is None:
        raise Problem(404, f"case {case} is not known", "case-unknown")
    return row


def _staff_view(request: Request, session: Session, row: Any) -> dict[str, Any]:
    contacts = session.execute(
        select(close_contacts.c.resident)
        .where(close_contacts.c.case == row["case"])
        .order_by(close_contacts.c.resident)
    ).scalars()
    return {
        "case": local_id(row["case"]),
        "resident": local_id(row["resident"]),
        "household": local_id(row["household"]),
        "building": local_id(row["building"]),
        "status": row["status"],
        "confirmed_on": row["confirmed_on"].isoformat(),
        "transfer_scheduled_at": shown(request, row["scheduled_at"]),
        "transferred_at": shown(request, row["transferred_at"]),
        "facility": row["facility"],
        "closed_at": shown(request, row["closed_at"]),
        "outcome": row["outcome"],
        "close_contacts": [local_id(c) for c in contacts],
    }


@router.get("/compounds/{compound}/cases", summary="Cases of the compound (staff: with resident ids)")
def list_cases(
    compound: CompoundId,
    request: Request,
    caller: StaffOnly,
    status: Literal["confirmed", "transfer-scheduled", "transferred", "closed"] | None = None,
) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        query = select(cases).where(cases.c.compound == compound)
        if status is not None:
            query = query.where(cases.c.status == status)
        rows = session.execute(query.order_by(cases.c.confirmed_on, cases.c.case)).mappings().all()
        return {"cases": [_staff_view(request, session, row) for row in rows]}


@router.get("/compounds/{compound}/cases/{case}", summary="One case")
def get_case(compound: CompoundId, case: LocalId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        return _staff_view(request, session, _case_row(session, compound, case))


def _after(request: Request, compound: str, case: str) -> dict[str, Any]:
    with runtime_of(request).database.reading() as session:
        return _staff_view(request, session, _case_row(session, compound, case))


@router.post("/compounds/{compound}/cases/{case}/transfer", summary="Schedule (or reschedule) the transfer")
def schedule_transfer(
    compound: CompoundId, case: LocalId, body: TransferIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        command.load(Case, global_id(compound, case)).schedule_transfer(local_time(request, body.scheduled_at))
    return _after(request, compound, case)


@router.post("/compounds/{compound}/cases/{case}/transferred", summary="The case left for central isolation")
def transferred(
    compound: CompoundId, case: LocalId, body: TransferredIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    caller.require_scope(compound)
    at = local_time(request, body.transferred_at) if body.transferred_at else now()
    command = Command(request, caller, compound)
    with command.unit():
        command.load(Case, global_id(compound, case)).transferred(at, now=now(), facility=body.facility)
    return _after(request, compound, case)


@router.post("/compounds/{compound}/cases/{case}/close", summary="The case returned home or recovered")
def close(compound: CompoundId, case: LocalId, body: CloseIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    at = local_time(request, body.closed_at) if body.closed_at else now()
    command = Command(request, caller, compound)
    with command.unit():
        command.load(Case, global_id(compound, case)).close(body.outcome, at, now=now())
    return _after(request, compound, case)


def _require_building(session: Session, compound: str, building: str) -> None:
    known = session.execute(
        select(buildings.c.building).where(buildings.c.building == global_id(compound, building))
    ).first()
    if known is None:
        raise Problem(404, f"building {building} is not registered", "building-unknown")


@router.get(
    "/compounds/{compound}/buildings/{building}/cases",
    summary="When will the case be transferred? (status and times, never who)",
)
def building_cases(compound: CompoundId, building: LocalId, request: Request, caller: Building) -> dict[str, Any]:
    """What the building group may know: how many cases, each one's status and transfer time; no ids."""
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        _require_building(session, compound, building)
        rows = (
            session.execute(
                select(cases).where(cases.c.building == global_id(compound, building)).order_by(cases.c.confirmed_on)
            )
            .mappings()
            .all()
        )
    listed = [
        {
            "number": number,
            "status": row["status"],
            "confirmed_on": row["confirmed_on"].isoformat(),
            "transfer_scheduled_at": shown(request, row["scheduled_at"]),
            "transferred_at": shown(request, row["transferred_at"]),
        }
        for number, row in enumerate(rows, start=1)
    ]
    waiting = [c for c in listed if c["status"] in ("confirmed", "transfer-scheduled")]
    return {
        "building": building,
        "open_cases": sum(1 for c in listed if c["status"] != "closed"),
        "awaiting_transfer": len(waiting),
        "cases": listed,
    }


# --- disinfection --------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/buildings/{building}/disinfections",
    status_code=201,
    summary="Record a disinfection of the building's common areas, with photos",
)
def record_disinfection(
    compound: CompoundId,
    building: LocalId,
    request: Request,
    caller: Disinfectors,
    areas: Annotated[list[Annotated[str, Field(min_length=1, max_length=60)]], Form(min_length=1, max_length=20)],
    photos: Annotated[list[UploadFile], File(description=f"1 to {MAX_PHOTOS} JPEG, PNG or WebP photos, ≤ 5 MB each")],
    done_at: Annotated[datetime | None, Form(description="Default: now")] = None,
    case: Annotated[str | None, Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    caller.require_scope(compound, building)
    with runtime_of(request).database.reading() as session:
        _require_building(session, compound, building)
        if case is not None:
            row = _case_row(session, compound, case)
            if local_id(row["building"]) != building:
                raise Problem(422, f"case {case} is not in building {building}", "case-other-building")
    if len(photos) > MAX_PHOTOS:
        raise Problem(422, f"at most {MAX_PHOTOS} photos per record", "too-many-photos")
    album = album_of(request)
    kept = [
        album.keep(compound, upload.file, f"photo {n} ({upload.filename})") for n, upload in enumerate(photos, start=1)
    ]
    record_id = global_id(compound, f"d-{secrets.token_hex(5)}")
    command = Command(request, caller, compound)
    with command.unit():
        command.load(Disinfection, record_id).record_done(
            global_id(compound, building),
            local_time(request, done_at) if done_at else now(),
            areas,
            kept,
            now=now(),
            case=global_id(compound, case) if case else None,
        )
    with runtime_of(request).database.reading() as session:
        row = session.execute(select(disinfections).where(disinfections.c.disinfection == record_id)).mappings().one()
    return _disinfection_view(request, compound, row)


def _disinfection_view(request: Request, compound: str, row: Any) -> dict[str, Any]:
    record = local_id(row["disinfection"])
    return {
        "disinfection": record,
        "building": local_id(row["building"]),
        "done_at": shown(request, row["done_at"]),
        "areas": json.loads(row["areas"]),
        "photos": [
            {**photo, "url": f"/compounds/{compound}/disinfections/{record}/photos/{photo['photo']}"}
            for photo in json.loads(row["photos"])
        ],
        "after_case": row["case"] is not None,
    }


@router.get("/compounds/{compound}/buildings/{building}/disinfections", summary="The building's disinfections")
def building_disinfections(
    compound: CompoundId, building: LocalId, request: Request, caller: Building
) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        _require_building(session, compound, building)
        rows = (
            session.execute(
                select(disinfections)
                .where(disinfections.c.building == global_id(compound, building))
                .order_by(disinfections.c.done_at.desc())
            )
            .mappings()
            .all()
        )
    return {"building": building, "disinfections": [_disinfection_view(request, compound, row) for row in rows]}


@router.get(
    "/compounds/{compound}/disinfections/{disinfection}/photos/{photo}",
    summary="A disinfection photo (for the building board)",
    response_class=FileResponse,
)
def disinfection_photo(
    compound: CompoundId,
    disinfection: LocalId,
    photo: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    request: Request,
    caller: Building,
) -> FileResponse:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        row = session.execute(
            select(disinfections.c.photos).where(
                disinfections.c.disinfection == global_id(compound, disinfection), disinfections.c.compound == compound
            )
        ).first()
    if row is None:
        raise Problem(404, f"disinfection {disinfection} is not recorded", "disinfection-unknown")
    listed = {p["photo"]: p for p in json.loads(row.photos)}
    if photo not in listed:
        raise Problem(404, "no such photo in this record", "photo-unknown")
    path, content_type = album_of(request).find(compound, photo)
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "public, max-age=86400"})
