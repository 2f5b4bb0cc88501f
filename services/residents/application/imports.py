"""Importing the committee's spreadsheets: buildings, then households and residents, all rows or none.

The sheet's headings are matched to the import's fields first (as committees write them, or as the person's
``mapping`` says); a preview answers that match without writing anything. Every row is checked before the write
transaction starts, so a rejected file holds no lock; a key limited to some buildings imports rows of those
only. Every problem is worded in the request's language, with a stable code. Reading the file is
``spreadsheets.read_sheet``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import date
from typing import Any, Literal

from juwei.aggregate import Invalid
from juwei.callers import Caller, Forbidden
from juwei.progress import Report
from juwei.service import Runtime
from services.residents import importing, spreadsheets
from services.residents.domain import RowError
from services.residents.domain.headings import NOT_KEPT, REQUIRED, HeadingMap, fields_of, map_headings
from services.residents.domain.wording import Language, field_name, say
from services.residents.models import HeadingOut, ImportOut, PreviewOut, SampleRowOut, TallyOut

Kind = Literal["buildings", "residents"]
# An import answer lists at most this many bad cells (and says how many there were).
MAX_LISTED_ERRORS = 2000
SAMPLE_ROWS = 5


def _require_buildings(caller: Caller, compound: str, buildings: set[str]) -> None:
    outside = sorted(b for b in buildings if not caller.may_act_on(compound, b))
    if outside:
        raise Forbidden(f"this key may not act on buildings {', '.join(outside)} of compound {compound}")


def _headings_out(headings: HeadingMap) -> list[HeadingOut]:
    return [
        HeadingOut(position=h.position, heading=h.text, field=h.field, chosen=h.chosen,
                   kept=h.field is not None and h.field not in NOT_KEPT)
        for h in headings.headings
    ]  # fmt: skip


def headings_of(sheet: spreadsheets.Sheet, kind: Kind, mapping: Mapping[str, str | None] | None) -> HeadingMap:
    return map_headings(sheet.headings, kind, mapping)


def preview(
    sheet: spreadsheets.Sheet, kind: Kind, mapping: Mapping[str, str | None] | None, language: Language
) -> PreviewOut:
    """How the sheet's headings fill the import's fields, and its first rows; nothing is written."""
    headings = headings_of(sheet, kind, mapping)
    _refuse_bad_mapping(headings, language)
    sample = [
        SampleRowOut(
            line=sheet.lines[index],
            cells=[spreadsheets.masked(h.field, cells[h.position - 1] if h.position <= len(cells) else "")
                   for h in headings.headings],
        )
        for index, cells in enumerate(sheet.cells[:SAMPLE_ROWS])
    ]  # fmt: skip
    return PreviewOut(
        kind=kind,
        headings=_headings_out(headings),
        fields=list(fields_of(kind)),
        required=[list(group) for group in REQUIRED[kind]],
        missing=headings.missing,
        unknown=headings.unknown,
        ready=headings.ready,
        rows=len(sheet.cells),
        sample=sample,
    )


def _refuse_bad_mapping(headings: HeadingMap, language: Language) -> None:
    if headings.bad_mapping:
        heading, name = headings.bad_mapping[0]
        raise Invalid(
            say("mapping-unknown-field", language, {"heading": heading, "field": name}),
            code="bad-mapping",
            mapping_errors=[{"heading": h, "field": f} for h, f in headings.bad_mapping],
            fields=list(fields_of(headings.kind)),
        )


def _require_headings(headings: HeadingMap, language: Language) -> None:
    """Unknown headings are ignored when every required field is there; else the mapping step is needed."""
    _refuse_bad_mapping(headings, language)
    if headings.missing:
        fields = "、".join if language == "zh" else ", ".join
        raise Invalid(
            say("headings-missing", language, {
                "fields": fields(field_name(f, language) for f in headings.missing),
                "unknown": fields(headings.unknown) or "-",
            }),
            code="headings-missing",
            missing=headings.missing,
            unknown=headings.unknown,
            headings=[h.model_dump() for h in _headings_out(headings)],
            fields=list(fields_of(headings.kind)),
        )  # fmt: skip


def _error_out(error: RowError, headings: HeadingMap, language: Language) -> dict[str, Any]:
    heading = next((h.text for h in headings.headings if h.field == error.column), None)
    return {
        "line": error.line,
        "column": error.column,
        "heading": heading,
        "code": error.code,
        "reason": error.say_in(language),
    }


def import_sheet(
    runtime: Runtime,
    caller: Caller,
    compound: str,
    kind: Kind,
    sheet: spreadsheets.Sheet,
    today: date,
    mapping: Mapping[str, str | None] | None = None,
    language: Language = "en",
    report: Report | None = None,
) -> ImportOut:
    """Import the sheet (HTTP upload or ``juwei residents import``); ``report`` is told (rows done, rows)."""
    headings = headings_of(sheet, kind, mapping)
    _require_headings(headings, language)
    try:
        if kind == "buildings":
            buildings = importing.parse_buildings(sheet, headings)
            _require_buildings(caller, compound, {row.building for row in buildings})
            with runtime.database.unit_of_work() as session:
                result = importing.import_buildings(
                    session, runtime.store, compound, buildings, actor=caller.key_id, report=report
                )
        else:
            with runtime.database.reading() as session:
                register = importing.registered_buildings(session, compound)
            residents = importing.validate_resident_rows(sheet, headings, today, register)
            _require_buildings(caller, compound, {row.building for row in residents})
            with runtime.database.unit_of_work() as session:
                result = importing.import_residents(
                    session,
                    runtime.store,
                    runtime.vault,
                    compound,
                    residents,
                    today=today,
                    actor=caller.key_id,
                    report=report,
                )
    except importing.ImportRejected as exc:
        raise Invalid(
            say("import-rejected", language, {"lines": exc.lines}),
            code="import-rejected",
            errors=[_error_out(error, headings, language) for error in exc.errors[:MAX_LISTED_ERRORS]],
            error_count=len(exc.errors),
        ) from None
    return ImportOut(
        kind=kind,
        rows=result.rows,
        buildings=TallyOut(**asdict(result.buildings)),
        households=TallyOut(**asdict(result.households)),
        residents=TallyOut(**asdict(result.residents)),
        changes=result.changes,
        events=result.events,
    )


def template(kind: Kind) -> bytes:
    return spreadsheets.template(kind)
