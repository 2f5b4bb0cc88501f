"""Routes of cases and transfers (转运), "when will the case be transferred?", and disinfection."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, UploadFile
from fastapi.responses import FileResponse
from pydantic import Field

from contracts.access import CompoundPeople, Officers, Oversight, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from juwei.openapi import answered_as
from juwei.problems import Problem
from services.testing.application import cases
from services.testing.domain import MAX_PHOTOS
from services.testing.models import (
    BuildingCases,
    BuildingDisinfections,
    CaseCloseIn,
    CaseCounts,
    CaseList,
    CaseOut,
    DisinfectionOut,
    TransferIn,
    TransferredIn,
    WorkTime,
)
from services.testing.photos import PhotoAlbum

router = APIRouter(tags=["cases and disinfection"])


@router.get(
    "/compounds/{compound}/cases", response_model=CaseList, summary="Cases of the compound (staff: with resident ids)"
)
def list_cases(
    compound: CompoundId,
    caller: Staff,
    runtime: RuntimeOf,
    status: Literal["confirmed", "transfer-scheduled", "transferred", "closed"] | None = None,
) -> dict[str, Any]:
    return cases.list_cases(runtime, compound, status)


@router.get(
    "/compounds/{compound}/case-counts",
    response_model=CaseCounts,
    summary="How many cases in each state (no ids): staff and the subdistrict office",
)
def case_counts(compound: CompoundId, caller: Oversight, runtime: RuntimeOf) -> dict[str, Any]:
    return cases.case_counts(runtime, compound)


@router.get("/compounds/{compound}/cases/{case}", response_model=CaseOut, summary="One case")
def get_case(compound: CompoundId, case: LocalId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return cases.get_case(runtime, compound, case)


@router.post(
    "/compounds/{compound}/cases/{case}/transfer",
    response_model=CaseOut,
    summary="Schedule (or reschedule) the transfer",
)
def schedule_transfer(
    compound: CompoundId, case: LocalId, body: TransferIn, caller: Staff, unit: Unit
) -> dict[str, Any]:
    return cases.schedule_transfer(unit, case, body)


@router.post(
    "/compounds/{compound}/cases/{case}/transferred",
    response_model=CaseOut,
    summary="The case left for central isolation",
)
def transferred(compound: CompoundId, case: LocalId, body: TransferredIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return cases.transferred(unit, case, body)


@router.post(
    "/compounds/{compound}/cases/{case}/close", response_model=CaseOut, summary="The case returned home or recovered"
)
def close(compound: CompoundId, case: LocalId, body: CaseCloseIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return cases.close(unit, case, body)


@router.get(
    "/compounds/{compound}/buildings/{building}/cases",
    response_model=BuildingCases,
    summary="When will the case be transferred? (status and times, never who)",
)
def building_cases(
    compound: CompoundId, building: LocalId, caller: CompoundPeople, runtime: RuntimeOf
) -> dict[str, Any]:
    """What the building group may know: how many cases, each one's status and transfer time; no ids."""
    return cases.building_cases(runtime, compound, building)


# --- disinfection --------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/buildings/{building}/disinfections",
    status_code=201,
    response_model=DisinfectionOut,
    summary="Record a disinfection of the building's common areas, with photos",
)
def record_disinfection(
    compound: CompoundId,
    building: LocalId,
    caller: Officers,
    unit: Unit,
    areas: Annotated[list[Annotated[str, Field(min_length=1, max_length=60)]], Form(min_length=1, max_length=20)],
    photos: Annotated[list[UploadFile], File(description=f"1 to {MAX_PHOTOS} JPEG, PNG or WebP photos, ≤ 5 MB each")],
    done_at: Annotated[WorkTime | None, Form(description="Default: now")] = None,
    case: Annotated[str | None, Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    caller.require_scope(compound, building)
    cases.check_disinfection(unit.runtime, compound, building, case)
    if len(photos) > MAX_PHOTOS:
        raise Problem(422, f"at most {MAX_PHOTOS} photos per record", "too-many-photos")
    album = PhotoAlbum(unit.runtime.settings.data_dir)
    kept = [
        album.keep(compound, upload.file, f"photo {n} ({upload.filename})") for n, upload in enumerate(photos, start=1)
    ]
    return cases.record_disinfection(unit, building, areas, kept, done_at, case)


@router.get(
    "/compounds/{compound}/buildings/{building}/disinfections",
    response_model=BuildingDisinfections,
    summary="The building's disinfections",
)
def building_disinfections(
    compound: CompoundId, building: LocalId, caller: CompoundPeople, runtime: RuntimeOf
) -> dict[str, Any]:
    return cases.building_disinfections(runtime, compound, building)


@router.get(
    "/compounds/{compound}/disinfections/{disinfection}/photos/{photo}",
    summary="A disinfection photo (for the building board)",
    response_class=FileResponse,
    responses=answered_as("The photo as it was uploaded", "image/jpeg", "image/png", "image/webp", binary=True),
)
def disinfection_photo(
    compound: CompoundId,
    disinfection: LocalId,
    photo: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    caller: CompoundPeople,
    runtime: RuntimeOf,
) -> FileResponse:
    cases.disinfection_photo(runtime, compound, disinfection, photo)
    path, content_type = PhotoAlbum(runtime.settings.data_dir).find(compound, photo)
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "public, max-age=86400"})
