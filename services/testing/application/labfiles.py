"""A lab's result file imported: every row as a plate's tube would be (negative clears the pool, positive asks
each of them for a re-test, invalid re-calls, a positive individual test confirms a case), all rows or none.

Every bad row is listed (row, column, what is wrong in Chinese and English) and nothing is recorded. The same
file again (by the SHA-256 of its bytes) records nothing new and says when it was imported; a tube that already
has the result a file gives is ``repeated``, one with another result is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from contracts.ids import global_id, local_id
from juwei.aggregate import Conflict, DomainRuleViolation, Invalid, NotFound
from juwei.callers import Caller, Forbidden
from juwei.unit_of_work import UnitOfWork
from juwei.wording import Said
from services.testing.application.clock import Clock, now
from services.testing.application.results import open_case
from services.testing.domain import Confirmation, Tube
from services.testing.domain.labfile import (
    FIELD_NAMES,
    MAX_LISTED,
    Columns,
    LabFile,
    LabRow,
    RowProblem,
    check_rows,
    match_headings,
)
from services.testing.labsheets import WORDING, LabSheet, say

# The lab file's refusals in Chinese for the problem's detail (``ServiceDefinition.wording``), by code.
LAB_FILE_ZH = {code: chinese for code, (chinese, _english) in WORDING.items()}


def _columns(sheet: LabSheet) -> Columns:
    """The file's headings matched to tube, result, time (and plate, well): refused when one is missing."""
    columns = match_headings(sheet.headings)
    headings = "、".join(h for h in sheet.headings if h) or "-"
    if columns.missing:
        params = {
            "missing": ", ".join(columns.missing),
            "missing_zh": "、".join(FIELD_NAMES[f][0] for f in columns.missing),
            "headings": headings,
        }
        raise Invalid(say("headings-missing", "en", params), code="headings-missing", **params,
                      unknown=columns.unknown)  # fmt: skip
    if columns.repeated:
        params = {"repeated": "、".join(columns.repeated)}
        raise Invalid(say("headings-repeated", "en", params), code="headings-repeated", **params)
    return columns


def _require_buildings(caller: Caller, compound: str, tubes: Iterable[Tube]) -> None:
    """A key limited to some buildings imports results of their residents only (the whole file is refused)."""
    if caller.buildings is None:
        return
    buildings = {local_id(swab.building) for tube in tubes for swab in tube.samples.values()}
    outside = sorted(b for b in buildings if not caller.may_act_on(compound, b))
    if outside:
        raise Forbidden(
            f"this key may not act on building {outside[0]} of compound {compound}: the file has tubes of "
            f"buildings {', '.join(outside)}",
            said=Said("scope-building", {"compound": compound, "building": ", ".join(outside)}),
        )


def _problem_of(row: LabRow, refusal: DomainRuleViolation, recorded: str | None) -> RowProblem:
    """A tube's refusal as the row's problem: unknown tube, a different result already recorded, another rule."""
    if isinstance(refusal, NotFound) and refusal.code == "tube-unknown":
        return RowProblem(row.line, "tube", "tube-unknown", {"tube": row.tube})
    if isinstance(refusal, Conflict) and refusal.code == "tube-resulted":
        params = {"tube": row.tube, "recorded": recorded, "result": row.result}
        return RowProblem(row.line, "result", "tube-resulted", params)
    return RowProblem(row.line, "tube", refusal.code, {"tube": row.tube, "reason": str(refusal)})


def _refuse(sheet: LabSheet, columns: Columns, problems: list[RowProblem]) -> Invalid:
    problems.sort(key=lambda p: (p.line, list(FIELD_NAMES).index(p.column) if p.column in FIELD_NAMES else 9))
    params = {"rows": len({p.line for p in problems}), "count": len(problems)}
    return Invalid(
        say("lab-file-refused", "en", params),
        code="lab-file-refused",
        **params,
        listed=min(len(problems), MAX_LISTED),
        errors=[p.listed(sheet.headings, columns) for p in problems[:MAX_LISTED]],
    )


def import_lab_file(
    unit: UnitOfWork, caller: Caller, sheet: LabSheet, digest: str, filename: str | None
) -> dict[str, Any]:
    """Record every row's result (in one unit of work, one append), or refuse the file listing every bad row."""
    compound = unit.compound
    clock = Clock.of(unit.runtime)
    columns = _columns(sheet)
    rows, problems = check_rows(sheet.cells, sheet.lines, columns, now=now(), zone=clock.zone)
    with unit:
        labfile = unit.load_or_new(LabFile, global_id(compound, f"lab-{digest}"))
        if labfile.exists:  # the same bytes again: answered from the first import, nothing recorded
            return _answer(clock, digest, filename, len(sheet.cells), labfile, first=False)
        loaded = unit.load_many(Tube, [global_id(compound, row.tube) for row in rows])
        _require_buildings(caller, compound, loaded.values())
        repeated: list[str] = []
        settled: list[tuple[LabRow, Tube]] = []
        confirmations: dict[str, tuple[Confirmation, date]] = {}
        for row in rows:
            tube = loaded[global_id(compound, row.tube)]
            if tube.already_resulted(row.result):
                repeated.append(row.tube)
                continue
            try:
                confirmation = tube.record_result(row.result, at=row.at)
            except DomainRuleViolation as refusal:
                problems.append(_problem_of(row, refusal, tube.result))
                continue
            settled.append((row, tube))
            if confirmation is not None:
                # Confirmed on the day the lab found it (today at the latest: a clock a little ahead).
                on = min(row.at.astimezone(clock.zone).date(), unit.today)
                confirmations.setdefault(confirmation.resident, (confirmation, on))
        if problems:
            raise _refuse(sheet, columns, problems)
        opened = {resident: open_case(unit, found, on) for resident, (found, on) in confirmations.items()}
        labfile.imported(digest, rows=len(rows), recorded=len(settled), repeated=len(repeated), at=now())
    answer = _answer(clock, digest, filename, len(rows), labfile, first=True)
    answer["repeated"] = repeated
    for row, tube in settled:
        answer["results"][row.result] += 1
        if tube.kind == "individual":
            resident = next(iter(tube.samples))
            if row.result == "positive":
                answer["cases"].append({"tube": row.tube, "resident": local_id(resident), "case": opened[resident]})
        elif row.result == "positive":
            answer["retests"].append(row.tube)
        if row.result == "invalid":
            answer["recalled"].append(row.tube)
    answer["plates"] = sorted({row.plate for row, _ in settled if row.plate})
    return answer


def _answer(
    clock: Clock, digest: str, filename: str | None, rows: int, labfile: LabFile, *, first: bool
) -> dict[str, Any]:
    imported_at = clock.shown(labfile.imported_at)
    if first:
        zh = f"已导入 {rows} 行，记录 {labfile.recorded} 个结果"
        en = f"{rows} rows imported; {labfile.recorded} results recorded"
    else:
        zh = f"此文件已于 {imported_at} 导入（{labfile.rows} 行，记录 {labfile.recorded} 个结果），这次未记录任何新内容"
        en = (f"this file was imported at {imported_at} ({labfile.rows} rows, {labfile.recorded} results recorded); "
              "nothing new was recorded")  # fmt: skip
    return {
        "file": digest,
        "filename": filename,
        "rows": rows,
        "already_imported": not first,
        "imported_at": imported_at,
        "recorded": labfile.recorded if first else 0,
        "repeated": [],
        "results": {"negative": 0, "positive": 0, "invalid": 0},
        "retests": [],
        "recalled": [],
        "cases": [],
        "plates": [],
        "message": zh,
        "message_en": en,
    }
