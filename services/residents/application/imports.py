"""Importing the committee's spreadsheets: buildings, then households and residents, all rows or none.

Every row is checked before the write transaction starts, so a rejected file holds no lock; a key limited to
some buildings imports rows of those only. Reading the file is ``importing.read_sheet``'s (its errors say
what is wrong with the file itself).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Literal

from juwei.aggregate import Invalid
from juwei.callers import Caller, Forbidden
from juwei.service import Runtime
from services.residents import importing
from services.residents.models import ImportOut, TallyOut

# An import answer lists at most this many bad cells (and says how many there were).
MAX_LISTED_ERRORS = 2000


def _require_buildings(caller: Caller, compound: str, buildings: set[str]) -> None:
    outside = sorted(b for b in buildings if not caller.may_act_on(compound, b))
    if outside:
        raise Forbidden(f"this key may not act on buildings {', '.join(outside)} of compound {compound}")


def import_sheet(
    runtime: Runtime,
    caller: Caller,
    compound: str,
    kind: Literal["buildings", "residents"],
    sheet: importing.Sheet,
    today: date,
) -> ImportOut:
    try:
        if kind == "buildings":
            buildings = importing.parse_buildings(sheet)
            _require_buildings(caller, compound, {row.building for row in buildings})
            with runtime.database.unit_of_work() as session:
                result = importing.import_buildings(session, runtime.store, compound, buildings, actor=caller.key_id)
        else:
            residents = importing.validate_resident_rows(sheet, today)
            _require_buildings(caller, compound, {row.building for row in residents})
            with runtime.database.unit_of_work() as session:
                result = importing.import_residents(
                    session, runtime.store, runtime.vault, compound, residents, today=today, actor=caller.key_id
                )
    except importing.ImportRejected as exc:
        raise Invalid(
            str(exc),
            code="import-rejected",
            errors=[asdict(error) for error in exc.errors[:MAX_LISTED_ERRORS]],
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
