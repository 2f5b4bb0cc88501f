"""Samples into tubes: one tube at a time, or a sampling point's upload of up to 100 tubes (all or none), and the
progress each building's group is told of."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from contracts.ids import global_id, local_id
from contracts.testing import BuildingTestingProgress
from juwei.aggregate import DomainRuleViolation, Invalid, NotFound
from juwei.callers import Caller, Forbidden
from juwei.session import Session
from juwei.store import lock_appends
from juwei.unit_of_work import UnitOfWork
from services.testing.application.clock import now
from services.testing.application.coverage import everyone
from services.testing.application.keys import require_point, volunteer_point
from services.testing.domain import Round, SamplingPoint, Tube, listed_twice, milestone_passed, status_after, tested
from services.testing.models import SamplesIn, UploadIn
from services.testing.views import points, residents, round_residents, samples


def refused(index: int, field: str, tube: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """One bad item of a batch, as the problem body lists it (``location`` as in validation problems)."""
    return {"index": index, "location": ["body", field, index], "tube": tube, "type": code, "message": message, **extra}


def sampling_facts(
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


def sampled_at(session: Session, caller: Caller, compound: str, point: str | None, door_to_door: bool) -> str | None:
    """The open point the samples were taken at (a volunteer's own by default), or None for door to door."""
    own_point = volunteer_point(session, caller, compound)
    point = point or own_point
    if own_point is not None and point != own_point:
        raise Forbidden(f"this key may record samples at point {own_point} only")
    if point is None and not door_to_door:
        raise Invalid(
            "say at which point the samples were taken, or that they were taken at home", code="point-required"
        )
    if point is not None:
        require_point(session, caller, compound, point)
        if not session.execute(select(points.c.open).where(points.c.point == global_id(compound, point))).scalar():
            raise SamplingPoint.unknown(point)
    return point


def collect(unit: UnitOfWork, caller: Caller, round: str, body: SamplesIn) -> dict[str, Any]:
    """Samples collected into a tube: pooled samples go into a tube of up to the round's pool size; a re-test
    gets a tube of its own."""
    compound = unit.compound
    round_id = global_id(compound, round)
    with unit:
        session = unit.session
        lock_appends(session)  # progress milestones are counted from the read model: one sampler at a time
        point = sampled_at(session, caller, compound, body.point, body.door_to_door)
        chosen = unit.load(Round, round_id)
        tube = unit.load_or_new(Tube, global_id(compound, body.tube))
        people = [global_id(compound, local) for local in dict.fromkeys(body.residents)]
        homes, statuses, given = sampling_facts(session, compound, round_id, people)
        at = now()
        for resident in people:
            if resident not in homes:
                raise NotFound(f"resident {local_id(resident)} is not registered", code="resident-unknown")
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
        report_progress(unit, round_id, [r for r in people if not tested(statuses.get(r))], homes)
    return {
        "tube": body.tube,
        "kind": tube.kind,
        "samples_in_tube": len(tube.samples),
        "capacity": chosen.pool_size if tube.kind == "pooled" else 1,
        "collected": list(dict.fromkeys(body.residents)),
    }


def upload_tubes(unit: UnitOfWork, caller: Caller, round: str, body: UploadIn) -> dict[str, Any]:
    """The rules of one tube's samples for every tube, in one unit of work: all recorded, or none.

    Every refused tube is listed in the refusal (``errors``: index, tube, type, message). A tube that already
    holds exactly the residents sent (the upload sent again) is reported in ``repeated``.
    """
    compound = unit.compound
    round_id = global_id(compound, round)
    with unit:
        session = unit.session
        lock_appends(session)  # progress milestones are counted from the read model: one sampler at a time
        point = sampled_at(session, caller, compound, body.point, body.door_to_door)
        chosen = unit.load(Round, round_id)
        tube_ids = [global_id(compound, item.tube) for item in body.tubes]
        loaded = unit.load_many(Tube, tube_ids)
        wanted = [[global_id(compound, local) for local in dict.fromkeys(item.residents)] for item in body.tubes]
        people_sent = list(dict.fromkeys(resident for people in wanted for resident in people))
        homes, statuses, given = sampling_facts(session, compound, round_id, people_sent)
        before = dict(statuses)
        at = now()
        errors: list[dict[str, Any]] = []
        repeated: list[str] = []
        recorded: list[dict[str, Any]] = []
        twice = listed_twice(tube_ids)
        for index, (item, people) in enumerate(zip(body.tubes, wanted, strict=True)):
            if index in twice:
                errors.append(refused(index, "tubes", item.tube, "tube-twice", f"tube {item.tube} is listed twice"))
                continue
            tube = loaded[tube_ids[index]]
            if tube.already_holds(round_id, people):
                repeated.append(item.tube)
                continue
            unknown = [local_id(resident) for resident in people if resident not in homes]
            if unknown:
                message = f"residents {', '.join(unknown)} are not registered"
                errors.append(refused(index, "tubes", item.tube, "resident-unknown", message, residents=unknown))
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
                errors.append(refused(index, "tubes", item.tube, exc.code, str(exc)))
                continue
            recorded.append({"tube": item.tube, "kind": tube.kind, "samples_in_tube": len(tube.samples)})
        if errors:
            raise Invalid(
                f"{len(errors)} of {len(body.tubes)} tubes were refused; nothing was recorded",
                code="tubes-refused",
                errors=errors,
            )
        newly = [r for people in wanted for r in people if not tested(before.get(r)) and tested(statuses.get(r))]
        report_progress(unit, round_id, list(dict.fromkeys(newly)), homes)
    return {
        "round": round,
        "point": point,
        "recorded": recorded,
        "samples": sum(len(loaded[global_id(compound, t["tube"])].samples) for t in recorded),
        "repeated": repeated,
    }


def report_progress(
    unit: UnitOfWork, round_id: str, newly_tested: list[str], homes: dict[str, tuple[str, str]]
) -> None:
    """Tell a building's group when it passes a quarter, half, three quarters and everyone tested."""
    session = unit.session
    fresh: dict[str, int] = {}
    for resident in newly_tested:
        building = homes[resident][1]
        fresh[building] = fresh.get(building, 0) + 1
    for building, count in fresh.items():
        rows = everyone(session, unit.compound, round_id, {local_id(building)})
        before = sum(tested(row.status) for row in rows)
        milestone = milestone_passed(before, before + count, len(rows))
        if milestone is not None:
            unit.runtime.store.append(
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
                compound=unit.compound,
                actor=unit.actor,
            )
