"""Samples into tubes, tube and individual results, antigen self-reports, and who has not been tested."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from contracts import roles as r
from contracts.roles import HEALTH_ROLES
from contracts.testing import BuildingTestingProgress
from juwei.aggregate import DomainRuleViolation
from juwei.auth import CompoundId, LocalId, issue_key, require
from juwei.callers import Caller, Holder
from juwei.problems import Problem
from juwei.store import lock_appends
from services.testing.api.common import (
    Command,
    LocalIdText,
    album_of,
    global_id,
    local_id,
    now,
    require_household,
    require_point,
    runtime_of,
    shown,
    today_of,
    visible_buildings,
    volunteer_point,
)
from services.testing.domain import (
    AWAITING_RESULT,
    MAX_UPLOAD_TUBES,
    PLATE_WELLS,
    TO_RESAMPLE,
    Case,
    Confirmation,
    Round,
    SelfReports,
    Tube,
    listed_twice,
    milestone_passed,
    natural_key,
    status_after,
    tested,
)
from services.testing.views import (
    antigen,
    cases,
    households,
    key_bindings,
    points,
    residents,
    round_residents,
    rounds,
    samples,
    tubes,
)

router = APIRouter(tags=["samples and results"])
StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Samplers = Annotated[Caller, Depends(require(*r.STAFF, r.SAMPLING_VOLUNTEER))]
Chasers = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER))]
Reporters = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER, r.HOUSEHOLD))]
Compound = Annotated[
    Caller,
    Depends(
        require(
            *r.STAFF,
            r.SAMPLING_VOLUNTEER,
            r.INFORMATION_OFFICER,
            r.LOGISTICS_VOLUNTEER,
            r.HOUSEHOLD,
            r.SUBDISTRICT_STAFF,
        )
    ),
]
BuildingQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


class SamplesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tube": "T0412-0001", "residents": ["r0701", "r0702"], "point": "p3"}]},
    )
    tube: LocalIdText = Field(description="The tube's barcode")
    residents: list[LocalIdText] = Field(min_length=1, max_length=20)
    point: LocalIdText | None = Field(None, description="Where the samples were taken (a volunteer's own point)")
    door_to_door: bool = Field(False, description="Taken at home (bedridden residents)")


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"result": "negative"}]})
    result: Literal["negative", "positive", "invalid"]


class CollectedTubeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tube: LocalIdText = Field(description="The tube's barcode")
    residents: list[LocalIdText] = Field(min_length=1, max_length=20)


class UploadIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"point": "p3", "tubes": [{"tube": "T0412-0001", "residents": ["r0701", "r0702"]}]}]
        },
    )
    point: LocalIdText | None = Field(None, description="Where the samples were taken (a volunteer's own point)")
    door_to_door: bool = Field(False, description="Taken at home (bedridden residents)")
    tubes: list[CollectedTubeIn] = Field(min_length=1, max_length=MAX_UPLOAD_TUBES)


class WellIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tube: LocalIdText = Field(description="The tube's barcode")
    result: Literal["negative", "positive", "invalid"]
    well: str | None = Field(None, pattern=r"^[A-H](?:[1-9]|1[0-2])$", description="Where it sat on the plate (A1–H12)")


class PlateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"results": [{"tube": "T0412-0001", "result": "negative", "well": "A1"}]}]},
    )
    results: list[WellIn] = Field(min_length=1, max_length=PLATE_WELLS)


def _refused(index: int, field: str, tube: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """One bad item of a batch, as the problem body lists it (``location`` as in validation problems)."""
    return {"index": index, "location": ["body", field, index], "tube": tube, "type": code, "message": message, **extra}


def _round(command: Command, round_id: str) -> Round:
    found = command.load(Round, round_id)
    found.require_scheduled()
    return found


def _sampling_facts(
    session: Session, compound: str, round_id: str, people: list[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, str], dict[str, int]]:
    """For these residents: (household, building), their status in the round, how many samples they gave."""
    homes = {
        row.resident: (row.household, row.building)
        for row in session.execute(
            select(residents.c.resident, residents.c.household, residents.c.building).where(
                residents.c.resident.in_(people), residents.c.compound == compound, residents.c.present.is_(True)
            )
        )
    }
    statuses = dict(
        session.execute(
            select(round_residents.c.resident, round_residents.c.status).where(
                round_residents.c["round"] == round_id, round_residents.c.resident.in_(people)
            )
        ).all()
    )
    given = dict(
        session.execute(
            select(samples.c.resident, func.count())
            .where(samples.c["round"] == round_id, samples.c.resident.in_(people))
            .group_by(samples.c.resident)
        ).all()
    )
    return homes, statuses, given


def _sampled_at(session: Session, caller: Caller, compound: str, point: str | None, door_to_door: bool) -> str | None:
    """The open point the samples were taken at (a volunteer's own by default), or None for door to door."""
    own_point = volunteer_point(session, caller, compound)
    point = point or own_point
    if own_point is not None and point != own_point:
        raise HTTPException(status_code=403, detail=f"this key may record samples at point {own_point} only")
    if point is None and not door_to_door:
        raise Problem(
            422, "say at which point the samples were taken, or that they were taken at home", "point-required"
        )
    if point is not None:
        require_point(session, caller, compound, point)
        if not session.execute(select(points.c.open).where(points.c.point == global_id(compound, point))).scalar():
            raise Problem(404, f"sampling point {point} is not open", "point-unknown")
    return point


@router.post("/compounds/{compound}/rounds/{round}/samples", status_code=201, summary="Samples collected into a tube")
def collect(
    compound: CompoundId, round: LocalId, body: SamplesIn, request: Request, caller: Samplers
) -> dict[str, Any]:
    """Pooled samples go into a tube of up to the round's pool size; a re-test gets a tube of its own."""
    round_id = global_id(compound, round)
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        assert session is not None
        caller.require_scope(compound)
        lock_appends(session)  # progress milestones are counted from the read model: one sampler at a time
        point = _sampled_at(session, caller, compound, body.point, body.door_to_door)
        chosen = _round(command, round_id)
        tube = command.load(Tube, global_id(compound, body.tube))
        people = [global_id(compound, local) for local in dict.fromkeys(body.residents)]
        homes, statuses, given = _sampling_facts(session, compound, round_id, people)
        at = now()
        for resident in people:
            if resident not in homes:
                raise Problem(404, f"resident {local_id(resident)} is not registered", "resident-unknown")
            household, building = homes[resident]
            tube.collect(
                round_id,
                resident,
                household,
                building,
                status=statuses.get(resident),
                round_kind=chosen.kind,
                pool_size=chosen.pool_size,
                attempt=given.get(resident, 0) + 1,
                at=at,
                point=global_id(compound, point) if point else None,
                door_to_door=body.door_to_door,
            )
        _report_progress(command, round_id, [r for r in people if not tested(statuses.get(r))], homes)
    return {
        "tube": body.tube,
        "kind": tube.kind,
        "samples_in_tube": len(tube.samples),
        "capacity": chosen.pool_size if tube.kind == "pooled" else 1,
        "collected": list(dict.fromkeys(body.residents)),
    }


@router.post(
    "/compounds/{compound}/rounds/{round}/tubes",
    status_code=201,
    summary="A sampling point uploads the tubes it collected (up to 100 tubes)",
)
def upload_tubes(
    compound: CompoundId, round: LocalId, body: UploadIn, request: Request, caller: Samplers
) -> dict[str, Any]:
    """The rules of one tube's samples for every tube, in one unit of work: all recorded, or none.

    Every refused tube is listed in the 422 problem (``errors``: index, tube, type, message). A tube that
    already holds exactly the residents sent (the upload sent again) is reported in ``repeated``.
    """
    round_id = global_id(compound, round)
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        assert session is not None
        caller.require_scope(compound)
        lock_appends(session)  # progress milestones are counted from the read model: one sampler at a time
        point = _sampled_at(session, caller, compound, body.point, body.door_to_door)
        chosen = _round(command, round_id)
        tube_ids = [global_id(compound, item.tube) for item in body.tubes]
        loaded = command.load_many(Tube, tube_ids)
        wanted = [[global_id(compound, local) for local in dict.fromkeys(item.residents)] for item in body.tubes]
        everyone = list(dict.fromkeys(resident for people in wanted for resident in people))
        homes, statuses, given = _sampling_facts(session, compound, round_id, everyone)
        before = dict(statuses)
        at = now()
        errors: list[dict[str, Any]] = []
        repeated: list[str] = []
        recorded: list[dict[str, Any]] = []
        twice = listed_twice(tube_ids)
        for index, (item, people) in enumerate(zip(body.tubes, wanted, strict=True)):
            if index in twice:
                errors.append(_refused(index, "tubes", item.tube, "tube-twice", f"tube {item.tube} is listed twice"))
                continue
            tube = loaded[tube_ids[index]]
            if tube.already_holds(round_id, people):
                repeated.append(item.tube)
                continue
            unknown = [local_id(resident) for resident in people if resident not in homes]
            if unknown:
                message = f"residents {', '.join(unknown)} are not registered"
                errors.append(_refused(index, "tubes", item.tube, "resident-unknown", message, residents=unknown))
                continue
            try:
                for resident in people:
                    household, building = homes[resident]
                    tube.collect(
                        round_id,
                        resident,
                        household,
                        building,
                        status=statuses.get(resident),
                        round_kind=chosen.kind,
                        pool_size=chosen.pool_size,
                        attempt=given.get(resident, 0) + 1,
                        at=at,
                        point=global_id(compound, point) if point else None,
                        door_to_door=body.door_to_door,
                    )
                    # Later tubes of the upload see this sample, as the next request would.
                    statuses[resident] = status_after(statuses.get(resident), "SampleCollected")  # type: ignore[assignment]
                    given[resident] = given.get(resident, 0) + 1
            except DomainRuleViolation as exc:
                errors.append(_refused(index, "tubes", item.tube, exc.code, str(exc)))
                continue
            recorded.append({"tube": item.tube, "kind": tube.kind, "samples_in_tube": len(tube.samples)})
        if errors:
            raise Problem(
                422,
                f"{len(errors)} of {len(body.tubes)} tubes were refused; nothing was recorded",
                "tubes-refused",
                errors=errors,
            )
        newly = [r for people in wanted for r in people if not tested(before.get(r)) and tested(statuses.get(r))]
        _report_progress(command, round_id, list(dict.fromkeys(newly)), homes)
    return {
        "round": round,
        "point": point,
        "recorded": recorded,
        "samples": sum(len(loaded[global_id(compound, t["tube"])].samples) for t in recorded),
        "repeated": repeated,
    }


def _report_progress(
    command: Command, round_id: str, newly_tested: list[str], homes: dict[str, tuple[str, str]]
) -> None:
    """Tell a building's group when it passes a quarter, half, three quarters and everyone tested."""
    session = command.session
    assert session is not None
    fresh: dict[str, int] = {}
    for resident in newly_tested:
        building = homes[resident][1]
        fresh[building] = fresh.get(building, 0) + 1
    for building, count in fresh.items():
        rows = _everyone(session, command.compound, round_id, {local_id(building)})
        before = sum(tested(row.status) for row in rows)
        milestone = milestone_passed(before, before + count, len(rows))
        if milestone is not None:
            command.runtime.store.append(
                session,
                f"progress-{round_id}-{building}",
                [
                    BuildingTestingProgress(
                        round=round_id,
                        building=building,
                        tested=before + count,
                        residents=len(rows),
                        milestone=milestone,
                    )
                ],
                expected_version=None,
                compound=command.compound,
                actor=command.caller.key_id,
            )


def _settle(command: Command, tube: Tube, result: str, today: Any) -> str | None:
    """Record a tube's result; an individual positive opens a case (unless one is already open)."""
    confirmation = tube.record_result(result, at=now())
    if confirmation is None:
        return None
    return _open_case(command, confirmation, today)


def _open_case(command: Command, confirmation: Confirmation, today: Any) -> str | None:
    session = command.session
    assert session is not None
    connection = session.connection()  # Core statements built once: the ORM path cost more than SQLite's work
    open_case = connection.execute(_OPEN_CASE, {"resident": confirmation.resident}).scalar()
    if open_case is not None:
        return local_id(open_case)
    case_id = global_id(command.compound, f"case-{secrets.token_hex(5)}")
    members = connection.execute(_MEMBERS, {"household": confirmation.household}).scalars()
    # A new case's stream is empty: nothing to read; it is appended with the tube's events in one go.
    command.create(Case, case_id).confirm(
        confirmation.resident,
        confirmation.household,
        confirmation.building,
        on=today,
        household_members=list(members),
    )
    return local_id(case_id)


# A resident's open case, if any; the present members of a household; a resident's individual sample whose
# tube awaits its result (the newest attempt first).
_OPEN_CASE = select(cases.c.case).where(cases.c.resident == bindparam("resident"), cases.c.status != "closed")
_MEMBERS = select(residents.c.resident).where(
    residents.c.household == bindparam("household"), residents.c.present.is_(True)
)
_WAITING = (
    select(samples.c.tube)
    .join(tubes, tubes.c.tube == samples.c.tube)
    .where(
        samples.c["round"] == bindparam("round"),
        samples.c.resident == bindparam("resident"),
        samples.c.kind == "individual",
        tubes.c.result.is_(None),
    )
    .order_by(samples.c.attempt.desc())
)


@router.post("/compounds/{compound}/tubes/{tube}/result", summary="The lab's result for a tube")
def tube_result(
    compound: CompoundId, tube: LocalId, body: ResultIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    """Negative clears the pool; positive asks each of them to stay home for a re-test; invalid re-calls."""
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    tube_id = global_id(compound, tube)
    with command.unit():
        found = command.load_many(Tube, [tube_id])[tube_id]  # saved with a case it opens in one append
        case = _settle(command, found, body.result, today_of(request))
    return {
        "tube": tube,
        "kind": found.kind,
        "result": body.result,
        "residents": [local_id(x) for x in found.samples],
        "case": case,
    }


@router.post("/compounds/{compound}/plates/{plate}/results", summary="A lab plate's results (up to 96 tubes)")
def plate_results(
    compound: CompoundId, plate: LocalId, body: PlateIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    """Each tube as its own result would be (negative clears, positive re-tests, invalid re-calls): all or none.

    Every refused tube is listed in the 422 problem (``errors``: index, tube, type, message). Posting the
    same plate again records nothing new: tubes that already have the result sent are listed in ``repeated``.
    """
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    tube_ids = [global_id(compound, well.tube) for well in body.results]
    with command.unit():
        loaded = command.load_many(Tube, tube_ids)
        at, today = now(), today_of(request)
        twice = listed_twice(tube_ids)
        errors: list[dict[str, Any]] = []
        repeated: list[str] = []
        settled: list[tuple[WellIn, Tube]] = []
        confirmations: dict[str, Confirmation] = {}
        for index, well in enumerate(body.results):
            if index in twice:
                message = f"tube {well.tube} is listed twice (first at index {twice[index]})"
                errors.append(_refused(index, "results", well.tube, "tube-twice", message))
                continue
            tube = loaded[tube_ids[index]]
            if tube.already_resulted(well.result):
                repeated.append(well.tube)
                continue
            try:
                confirmation = tube.record_result(well.result, at=at)
            except DomainRuleViolation as exc:
                errors.append(_refused(index, "results", well.tube, exc.code, str(exc)))
                continue
            settled.append((well, tube))
            if confirmation is not None:
                confirmations.setdefault(confirmation.resident, confirmation)
        if errors:
            raise Problem(
                422,
                f"{len(errors)} of {len(body.results)} tubes on plate {plate} were refused; nothing was recorded",
                "plate-refused",
                plate=plate,
                errors=errors,
            )
        opened = {resident: _open_case(command, found, today) for resident, found in confirmations.items()}
    return {
        "plate": plate,
        "recorded": [
            {
                "tube": well.tube,
                "kind": tube.kind,
                "result": well.result,
                "residents": [local_id(x) for x in tube.samples],
                "case": opened.get(next(iter(tube.samples))) if tube.kind == "individual" else None,
            }
            for well, tube in settled
        ],
        "repeated": repeated,
    }


@router.post(
    "/compounds/{compound}/rounds/{round}/residents/{resident}/result", summary="A resident's individual result"
)
def individual_result(
    compound: CompoundId, round: LocalId, resident: LocalId, body: ResultIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    caller.require_scope(compound)
    round_id, resident_id = global_id(compound, round), global_id(compound, resident)
    command = Command(request, caller, compound)
    with command.unit():
        assert command.session is not None
        waiting = command.session.connection().execute(_WAITING, {"round": round_id, "resident": resident_id}).scalar()
        if waiting is None:
            raise Problem(409, f"resident {resident} has no individual sample awaiting a result", "no-sample-waiting")
        # The tube and the case it opens go out in one append (one version check, one insert, one projection run).
        found = command.load_many(Tube, [waiting])[waiting]
        case = _settle(command, found, body.result, today_of(request))
    return {"resident": resident, "tube": local_id(waiting), "result": body.result, "case": case}


@router.get("/compounds/{compound}/tubes/{tube}", summary="A tube: its samples and result")
def get_tube(compound: CompoundId, tube: LocalId, request: Request, caller: Samplers) -> dict[str, Any]:
    caller.require_scope(compound)
    tube_id = global_id(compound, tube)
    with runtime_of(request).database.reading() as session:
        row = session.execute(select(tubes).where(tubes.c.tube == tube_id)).mappings().first()
        if row is None:
            raise Problem(404, f"tube {tube} holds no sample", "tube-unknown")
        inside = session.execute(
            select(samples.c.resident).where(samples.c.tube == tube_id).order_by(samples.c.collected_at)
        ).scalars()
        found = {
            "tube": tube,
            "round": local_id(row["round"]),
            "kind": row["kind"],
            "point": local_id(row["point"]) if row["point"] else None,
            "residents": [local_id(x) for x in inside],
            "resulted_at": shown(request, row["resulted_at"]),
        }
    # A result is health data: a sampling volunteer (no health grant) sees that it came, not what it was.
    if caller.role in HEALTH_ROLES:
        found["result"] = row["result"]
    return found


# --- antigen self-reports ----------------------------------------------------------------------------------


def _household(session: Session, compound: str, household: str) -> Any:
    row = session.execute(
        select(households.c.building, households.c.floor).where(
            households.c.household == global_id(compound, household), households.c.compound == compound
        )
    ).first()
    if row is None:
        raise Problem(404, f"household {household} is not registered", "household-unknown")
    return row


@router.post("/compounds/{compound}/households/{household}/keys", status_code=201, summary="A household's own key")
def household_key(compound: CompoundId, household: LocalId, request: Request, caller: Chasers) -> dict[str, Any]:
    """The key lets the household's representative report the members' self-tests, and nobody else's."""
    household_id = global_id(compound, household)
    runtime = runtime_of(request)
    with runtime.database.unit_of_work() as session:
        home = _household(session, compound, household)
        caller.require_scope(compound, local_id(home.building))
        issued = issue_key(
            session,
            r.HOUSEHOLD,
            compound,
            [local_id(home.building)],
            label=f"household {household}",
            holder=Holder("household", household_id),
        )
        session.execute(
            key_bindings.insert().values(
                key_id=issued.caller.key_id, compound=compound, point=None, household=household_id
            )
        )
    return {"key": issued.key, "role": r.HOUSEHOLD, "household": household, "building": local_id(home.building)}


@router.post(
    "/compounds/{compound}/rounds/{round}/households/{household}/antigen",
    status_code=201,
    summary="A household member's antigen self-test result, with an optional photo",
)
def report_antigen(
    compound: CompoundId,
    round: LocalId,
    household: LocalId,
    request: Request,
    caller: Reporters,
    resident: Annotated[str, Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")],
    result: Annotated[Literal["negative", "positive", "invalid"], Form()],
    photo: Annotated[UploadFile | None, File(description="JPEG, PNG or WebP, at most 5 MB")] = None,
) -> dict[str, Any]:
    round_id, household_id = global_id(compound, round), global_id(compound, household)
    with runtime_of(request).database.reading() as session:
        home = _household(session, compound, household)
        require_household(session, caller, compound, household_id, home.building)
    kept = album_of(request).keep(compound, photo.file, "the photo") if photo is not None and photo.filename else None
    command = Command(request, caller, compound)
    with command.unit():
        assert command.session is not None
        chosen = _round(command, round_id)
        members = command.session.execute(
            select(residents.c.resident).where(residents.c.household == household_id, residents.c.present.is_(True))
        ).scalars()
        reports = command.load(SelfReports, SelfReports.id_of(round_id, household_id))
        reports.report(
            round_id,
            household_id,
            home.building,
            global_id(compound, resident),
            result,
            round_kind=chosen.kind,
            members=set(members),
            at=now(),
            photo=kept.photo if kept else None,
        )
    return {
        "round": round,
        "household": household,
        "resident": resident,
        "result": result,
        "pcr_requested": result == "positive",
        "photo": kept.photo if kept else None,
    }


@router.get("/compounds/{compound}/rounds/{round}/households/{household}/antigen", summary="A household's self-reports")
def household_reports(
    compound: CompoundId, round: LocalId, household: LocalId, request: Request, caller: Reporters
) -> dict[str, Any]:
    round_id, household_id = global_id(compound, round), global_id(compound, household)
    with runtime_of(request).database.reading() as session:
        home = _household(session, compound, household)
        require_household(session, caller, compound, household_id, home.building)
        members = (
            session.execute(
                select(residents.c.resident).where(residents.c.household == household_id, residents.c.present.is_(True))
            )
            .scalars()
            .all()
        )
        reported = {
            row["resident"]: row
            for row in session.execute(
                select(antigen).where(antigen.c["round"] == round_id, antigen.c.household == household_id)
            ).mappings()
        }
        statuses = dict(
            session.execute(
                select(round_residents.c.resident, round_residents.c.status).where(
                    round_residents.c["round"] == round_id, round_residents.c.household == household_id
                )
            ).all()
        )
    return {
        "round": round,
        "household": household,
        "members": [
            {
                "resident": local_id(m),
                "result": reported[m]["result"] if m in reported else None,
                "reported_at": shown(request, reported[m]["reported_at"]) if m in reported else None,
                "photo": reported[m]["photo"] if m in reported else None,
                "status": statuses.get(m),
            }
            for m in sorted(members)
        ],
    }


@router.get(
    "/compounds/{compound}/rounds/{round}/households/{household}/antigen/{resident}/photo",
    summary="The photo sent with a self-report",
    response_class=FileResponse,
)
def antigen_photo(
    compound: CompoundId, round: LocalId, household: LocalId, resident: LocalId, request: Request, caller: Reporters
) -> FileResponse:
    household_id = global_id(compound, household)
    with runtime_of(request).database.reading() as session:
        home = _household(session, compound, household)
        require_household(session, caller, compound, household_id, home.building)
        photo = session.execute(
            select(antigen.c.photo).where(
                antigen.c["round"] == global_id(compound, round),
                antigen.c.resident == global_id(compound, resident),
                antigen.c.household == household_id,
            )
        ).scalar()
    if photo is None:
        raise Problem(404, "no photo was sent with this report", "photo-unknown")
    path, content_type = album_of(request).find(compound, photo)
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})


# --- coverage: who has not been tested ---------------------------------------------------------------------


def _everyone(session: Session, compound: str, round_id: str, wanted: set[str] | None) -> list[Any]:
    query = (
        select(
            residents.c.resident,
            residents.c.household,
            residents.c.building,
            households.c.floor,
            round_residents.c.status,
        )
        .join(households, households.c.household == residents.c.household)
        .outerjoin(
            round_residents,
            (round_residents.c.resident == residents.c.resident) & (round_residents.c["round"] == round_id),
        )
        .where(residents.c.compound == compound, residents.c.present.is_(True))
    )
    if wanted is not None:
        query = query.where(residents.c.building.in_([global_id(compound, b) for b in wanted]))
    return list(session.execute(query).all())


@router.get("/compounds/{compound}/rounds/{round}/coverage", summary="Who has not been tested, by building and floor")
def coverage(
    compound: CompoundId, round: LocalId, request: Request, caller: Chasers, building: BuildingQuery = None
) -> dict[str, Any]:
    """The list information officers chase: by building, floor and household, resident ids only."""
    wanted = visible_buildings(caller, compound, building)
    round_id = global_id(compound, round)
    with runtime_of(request).database.reading() as session:
        _require_round(session, round_id, round)
        rows = _everyone(session, compound, round_id, wanted)
    per_building: dict[str, dict[str, Any]] = {}
    for resident, household, building_id, floor, status in rows:
        entry = per_building.setdefault(building_id, {"residents": 0, "tested": 0, "floors": {}})
        entry["residents"] += 1
        if tested(status):
            entry["tested"] += 1
        if tested(status) and status not in TO_RESAMPLE:
            continue
        homes = entry["floors"].setdefault(floor, {})
        chase = homes.setdefault(household, {"not_tested": [], "to_resample": []})
        if status is None:
            chase["not_tested"].append(local_id(resident))
        else:
            chase["to_resample"].append({"resident": local_id(resident), "status": status})
    return {
        "round": round,
        "buildings": [
            {
                "building": local_id(b),
                "residents": entry["residents"],
                "tested": entry["tested"],
                "not_tested": entry["residents"] - entry["tested"],
                "floors": [
                    {
                        "floor": floor,
                        "households": [
                            {"household": local_id(h), **lists} for h, lists in sorted(entry["floors"][floor].items())
                        ],
                    }
                    for floor in sorted(entry["floors"])
                ],
            }
            for b, entry in sorted(per_building.items(), key=lambda item: natural_key(item[0]))
        ],
    }


def _require_round(session: Session, round_id: str, round: str) -> None:
    if session.execute(select(rounds.c.kind).where(rounds.c["round"] == round_id)).scalar() is None:
        raise Problem(404, f"round {round} is not scheduled", "round-unknown")


@router.get("/compounds/{compound}/rounds/{round}/counts", summary="Tested per building (what the groups are told)")
def counts(
    compound: CompoundId, round: LocalId, request: Request, caller: Compound, building: BuildingQuery = None
) -> dict[str, Any]:
    """Aggregates only: "Building 7: 198 of 200 tested"."""
    caller.require_scope(compound)
    round_id = global_id(compound, round)
    with runtime_of(request).database.reading() as session:
        _require_round(session, round_id, round)
        rows = _everyone(session, compound, round_id, {building} if building else None)
    per_building: dict[str, dict[str, int]] = {}
    for _resident, _household, building_id, _floor, status in rows:
        entry = per_building.setdefault(
            building_id,
            {"residents": 0, "tested": 0, "negative": 0, "awaiting_result": 0, "to_resample": 0, "positive": 0},
        )
        entry["residents"] += 1
        entry["tested"] += tested(status)
        entry["negative"] += status in ("negative", "antigen-negative")
        entry["awaiting_result"] += status in AWAITING_RESULT
        entry["to_resample"] += status in TO_RESAMPLE
        entry["positive"] += status == "positive"
    listed = [
        {
            "building": local_id(b),
            **entry,
            "text": f"Building {local_id(b)}: {entry['tested']} of {entry['residents']} tested",
        }
        for b, entry in sorted(per_building.items(), key=lambda item: natural_key(item[0]))
    ]
    return {
        "round": round,
        "residents": sum(e["residents"] for e in per_building.values()),
        "tested": sum(e["tested"] for e in per_building.values()),
        "buildings": listed,
    }
