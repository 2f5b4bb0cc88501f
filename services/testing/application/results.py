"""Results: a lab's result for one tube, a 96-well plate's results (all or none), a resident's individual
result, and what a tube shows to whom. A positive individual result confirms a case."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select

from contracts.ids import global_id, local_id
from contracts.roles import HEALTH_ROLES
from juwei.aggregate import Conflict, DomainRuleViolation, Invalid, NotFound
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.testing.application.clock import Clock, now
from services.testing.application.samples import refused
from services.testing.domain import Case, Confirmation, Tube, listed_twice
from services.testing.models import PlateIn, ResultIn, WellIn
from services.testing.views import cases, residents, samples, tubes


def settle(unit: UnitOfWork, tube: Tube, result: str, today: date) -> str | None:
    """Record a tube's result; an individual positive opens a case (unless one is already open)."""
    confirmation = tube.record_result(result, at=now())
    if confirmation is None:
        return None
    return open_case(unit, confirmation, today)


def open_case(unit: UnitOfWork, confirmation: Confirmation, today: date) -> str | None:
    """The resident's open case, or a new one confirmed now (it needs no read: its id was just drawn)."""
    session = unit.session
    connection = session.connection()  # statements built once: building one costs more than SQLite's work
    already = connection.execute(_OPEN_CASE, {"resident": confirmation.resident}).scalar()
    if already is not None:
        return local_id(already)
    case_id = global_id(unit.compound, f"case-{secrets.token_hex(5)}")
    members = connection.execute(_MEMBERS, {"household": confirmation.household}).scalars()
    # A new case's stream is empty: nothing to read; it is appended with the tube's events in one go.
    unit.create(Case, case_id).confirm(
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


def tube_result(unit: UnitOfWork, tube: str, body: ResultIn) -> dict[str, Any]:
    """The lab's result for a tube: negative clears the pool; positive asks each of them to stay home for a
    re-test; invalid re-calls them."""
    compound = unit.compound
    tube_id = global_id(compound, tube)
    with unit:
        found = unit.load_many(Tube, [tube_id])[tube_id]  # saved with a case it opens in one append
        case = settle(unit, found, body.result, unit.today)
    return {
        "tube": tube,
        "kind": found.kind,
        "result": body.result,
        "residents": [local_id(x) for x in found.samples],
        "case": case,
    }


def plate_results(unit: UnitOfWork, plate: str, body: PlateIn) -> dict[str, Any]:
    """Each tube as its own result would be (negative clears, positive re-tests, invalid re-calls): all or none.

    Every refused tube is listed in the refusal (``errors``: index, tube, type, message). Posting the same
    plate again records nothing new: tubes that already have the result sent are listed in ``repeated``.
    """
    compound = unit.compound
    tube_ids = [global_id(compound, well.tube) for well in body.results]
    with unit:
        loaded = unit.load_many(Tube, tube_ids)
        at, today = now(), unit.today
        twice = listed_twice(tube_ids)
        errors: list[dict[str, Any]] = []
        repeated: list[str] = []
        settled: list[tuple[WellIn, Tube]] = []
        confirmations: dict[str, Confirmation] = {}
        for index, well in enumerate(body.results):
            if index in twice:
                message = f"tube {well.tube} is listed twice (first at index {twice[index]})"
                errors.append(refused(index, "results", well.tube, "tube-twice", message))
                continue
            tube = loaded[tube_ids[index]]
            if tube.already_resulted(well.result):
                repeated.append(well.tube)
                continue
            try:
                confirmation = tube.record_result(well.result, at=at)
            except DomainRuleViolation as exc:
                errors.append(refused(index, "results", well.tube, exc.code, str(exc)))
                continue
            settled.append((well, tube))
            if confirmation is not None:
                confirmations.setdefault(confirmation.resident, confirmation)
        if errors:
            raise Invalid(
                f"{len(errors)} of {len(body.results)} tubes on plate {plate} were refused; nothing was recorded",
                code="plate-refused",
                plate=plate,
                errors=errors,
            )
        opened = {resident: open_case(unit, found, today) for resident, found in confirmations.items()}
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


def individual_result(unit: UnitOfWork, round: str, resident: str, body: ResultIn) -> dict[str, Any]:
    """A resident's individual result, for the sample of theirs that awaits one."""
    compound = unit.compound
    round_id, resident_id = global_id(compound, round), global_id(compound, resident)
    with unit:
        waiting = unit.session.connection().execute(_WAITING, {"round": round_id, "resident": resident_id}).scalar()
        if waiting is None:
            raise Conflict(f"resident {resident} has no individual sample awaiting a result", code="no-sample-waiting")
        # The tube and the case it opens go out in one append (one version check, one insert, one projection run).
        found = unit.load_many(Tube, [waiting])[waiting]
        case = settle(unit, found, body.result, unit.today)
    return {"resident": resident, "tube": local_id(waiting), "result": body.result, "case": case}


def get_tube(runtime: Runtime, caller: Caller, compound: str, tube: str) -> dict[str, Any]:
    """A tube: its samples and result (a result is health data: not for a sampling volunteer)."""
    clock = Clock.of(runtime)
    tube_id = global_id(compound, tube)
    with runtime.database.reading() as session:
        row = session.execute(select(tubes).where(tubes.c.tube == tube_id)).mappings().first()
        if row is None:
            raise NotFound(f"tube {tube} holds no sample", code="tube-unknown")
        inside = session.execute(
            select(samples.c.resident).where(samples.c.tube == tube_id).order_by(samples.c.collected_at)
        ).scalars()
        found = {
            "tube": tube,
            "round": local_id(row["round"]),
            "kind": row["kind"],
            "point": local_id(row["point"]) if row["point"] else None,
            "residents": [local_id(x) for x in inside],
            "resulted_at": clock.shown(row["resulted_at"]),
        }
    # A result is health data: a sampling volunteer (no health grant) sees that it came, not what it was.
    if caller.role in HEALTH_ROLES:
        found["result"] = row["result"]
    return found
