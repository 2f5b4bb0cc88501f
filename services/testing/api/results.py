"""Routes of samples into tubes, tube and individual results, antigen self-reports, and who has not been tested."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from contracts.access import CompoundPeople, Officers, Samplers, SelfReporters, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from juwei.openapi import answered_as
from services.testing.application import antigen, results, samples
from services.testing.application import coverage as untested
from services.testing.models import (
    AntigenReported,
    CountsOut,
    CoverageOut,
    HouseholdKeyOut,
    HouseholdReports,
    IndividualResulted,
    PlateIn,
    PlateResults,
    ResultIn,
    SamplesCollected,
    SamplesIn,
    TubeOut,
    TubeResulted,
    TubesUploaded,
    UnreachedOut,
    UploadIn,
)
from services.testing.photos import PhotoAlbum

router = APIRouter(tags=["samples and results"])
BuildingQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


@router.post(
    "/compounds/{compound}/rounds/{round}/samples",
    status_code=201,
    response_model=SamplesCollected,
    summary="Samples collected into a tube",
)
def collect(compound: CompoundId, round: LocalId, body: SamplesIn, caller: Samplers, unit: Unit) -> dict[str, Any]:
    """Pooled samples go into a tube of up to the round's pool size; a re-test gets a tube of its own."""
    return samples.collect(unit, caller, round, body)


@router.post(
    "/compounds/{compound}/rounds/{round}/tubes",
    status_code=201,
    response_model=TubesUploaded,
    summary="A sampling point uploads the tubes it collected (up to 100 tubes)",
)
def upload_tubes(compound: CompoundId, round: LocalId, body: UploadIn, caller: Samplers, unit: Unit) -> dict[str, Any]:
    """The rules of one tube's samples for every tube, in one unit of work: all recorded, or none.

    Every refused tube is listed in the 422 problem (``errors``: index, tube, type, message). A tube that
    already holds exactly the residents sent (the upload sent again) is reported in ``repeated``.
    """
    return samples.upload_tubes(unit, caller, round, body)


@router.post(
    "/compounds/{compound}/tubes/{tube}/result", response_model=TubeResulted, summary="The lab's result for a tube"
)
def tube_result(compound: CompoundId, tube: LocalId, body: ResultIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    """Negative clears the pool; positive asks each of them to stay home for a re-test; invalid re-calls."""
    return results.tube_result(unit, tube, body)


@router.post(
    "/compounds/{compound}/plates/{plate}/results",
    response_model=PlateResults,
    summary="A lab plate's results (up to 96 tubes)",
)
def plate_results(compound: CompoundId, plate: LocalId, body: PlateIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    """Each tube as its own result would be (negative clears, positive re-tests, invalid re-calls): all or none.

    Every refused tube is listed in the 422 problem (``errors``: index, tube, type, message). Posting the
    same plate again records nothing new: tubes that already have the result sent are listed in ``repeated``.
    """
    return results.plate_results(unit, plate, body)


@router.post(
    "/compounds/{compound}/rounds/{round}/residents/{resident}/result",
    response_model=IndividualResulted,
    summary="A resident's individual result",
)
def individual_result(
    compound: CompoundId, round: LocalId, resident: LocalId, body: ResultIn, caller: Staff, unit: Unit
) -> dict[str, Any]:
    return results.individual_result(unit, round, resident, body)


@router.get(
    "/compounds/{compound}/tubes/{tube}",
    response_model=TubeOut,
    response_model_exclude_unset=True,
    summary="A tube: its samples and result",
)
def get_tube(compound: CompoundId, tube: LocalId, caller: Samplers, runtime: RuntimeOf) -> dict[str, Any]:
    return results.get_tube(runtime, caller, compound, tube)


# --- antigen self-reports ----------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/households/{household}/keys",
    status_code=201,
    response_model=HouseholdKeyOut,
    summary="A household's own key",
)
def household_key(compound: CompoundId, household: LocalId, caller: Officers, runtime: RuntimeOf) -> dict[str, Any]:
    """The key lets the household's representative report the members' self-tests, and nobody else's."""
    return antigen.household_key(runtime, caller, compound, household)


@router.post(
    "/compounds/{compound}/rounds/{round}/households/{household}/antigen",
    status_code=201,
    response_model=AntigenReported,
    summary="A household member's antigen self-test result, with an optional photo",
)
def report_antigen(
    compound: CompoundId,
    round: LocalId,
    household: LocalId,
    caller: SelfReporters,
    unit: Unit,
    resident: Annotated[str, Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")],
    result: Annotated[Literal["negative", "positive", "invalid"], Form()],
    photo: Annotated[UploadFile | None, File(description="JPEG, PNG or WebP, at most 5 MB")] = None,
) -> dict[str, Any]:
    home = antigen.check_reporter(unit.runtime, caller, compound, household)
    album = PhotoAlbum(unit.runtime.settings.data_dir)
    kept = album.keep(compound, photo.file, "the photo") if photo is not None and photo.filename else None
    return antigen.report_antigen(unit, home, round, household, resident, result, kept)


@router.get(
    "/compounds/{compound}/rounds/{round}/households/{household}/antigen",
    response_model=HouseholdReports,
    summary="A household's self-reports",
)
def household_reports(
    compound: CompoundId, round: LocalId, household: LocalId, caller: SelfReporters, runtime: RuntimeOf
) -> dict[str, Any]:
    return antigen.household_reports(runtime, caller, compound, round, household)


@router.get(
    "/compounds/{compound}/rounds/{round}/households/{household}/antigen/{resident}/photo",
    summary="The photo sent with a self-report",
    response_class=FileResponse,
    responses=answered_as("The photo as it was sent", "image/jpeg", "image/png", "image/webp", binary=True),
)
def antigen_photo(
    compound: CompoundId,
    round: LocalId,
    household: LocalId,
    resident: LocalId,
    caller: SelfReporters,
    runtime: RuntimeOf,
) -> FileResponse:
    photo = antigen.antigen_photo(runtime, caller, compound, round, household, resident)
    path, content_type = PhotoAlbum(runtime.settings.data_dir).find(compound, photo)
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})


# --- coverage: who has not been tested ---------------------------------------------------------------------


@router.get(
    "/compounds/{compound}/rounds/{round}/coverage",
    response_model=CoverageOut,
    summary="Who has not been tested, by building and floor",
)
def coverage(
    compound: CompoundId, round: LocalId, caller: Officers, runtime: RuntimeOf, building: BuildingQuery = None
) -> dict[str, Any]:
    """The list information officers chase: by building, floor and household, resident ids only."""
    return untested.coverage(runtime, caller, compound, round, building)


@router.get(
    "/compounds/{compound}/unreached-households",
    response_model=UnreachedOut,
    summary="Households of the caller's buildings not yet reached (nobody sampled) in the current round",
    responses={404: {"description": "No round has begun"}},
)
def unreached(
    compound: CompoundId, caller: Officers, runtime: RuntimeOf, building: BuildingQuery = None
) -> dict[str, Any]:
    return untested.unreached(runtime, caller, compound, building)


@router.get(
    "/compounds/{compound}/rounds/{round}/counts",
    response_model=CountsOut,
    summary="Tested per building (what the groups are told)",
)
def counts(
    compound: CompoundId, round: LocalId, caller: CompoundPeople, runtime: RuntimeOf, building: BuildingQuery = None
) -> dict[str, Any]:
    """Aggregates only: "Building 7: 198 of 200 tested"."""
    return untested.counts(runtime, compound, round, building)
