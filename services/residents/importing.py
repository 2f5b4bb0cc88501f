"""Bulk import of the committee's spreadsheets: buildings, then households and residents (CSV or XLSX).

Reading, validating and applying are kept apart and free of HTTP: ``read_sheet`` turns a file into rows
with the line each came from, ``validate_rows`` (domain) and ``validate_building_rows`` check every row,
and ``import_buildings`` / ``import_residents`` check the rows against the register and then write
everything in the caller's one unit of work, or raise ``ImportRejected`` with every bad row and write
nothing. Importing the same file twice changes nothing: what is already registered is compared with the
read model (and the sealed identity) and only differences become events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import select

from contracts.ids import global_id, local_id
from juwei.aggregate import Aggregate
from juwei.events import Envelope
from juwei.progress import Report
from juwei.session import Session
from juwei.store import EventStore, envelope_from_row, events_table, lock_appends
from juwei.vault import Vault
from services.residents import views
from services.residents.domain import (
    IMPORT_COLUMNS,
    NEEDS_COLUMNS,
    Building,
    BuildingIndex,
    Household,
    ImportRow,
    Needs,
    RegisteredBuilding,
    RowError,
    validate_rows,
)
from services.residents.domain.headings import BUILDING_FIELDS, HeadingMap
from services.residents.domain.notation import building_label
from services.residents.spreadsheets import (
    MAX_BYTES,
    MAX_LINES,
    MAX_ROWS,
    XLSX_MEDIA_TYPE,
    Sheet,
    UnreadableFile,
    read_sheet,
)

__all__ = [
    "IMPORT_COLUMNS",
    "MAX_BYTES",
    "MAX_LINES",
    "MAX_ROWS",
    "XLSX_MEDIA_TYPE",
    "ImportRejected",
    "Sheet",
    "UnreadableFile",
    "import_buildings",
    "import_residents",
    "read_sheet",
]

BUILDING_COLUMNS = BUILDING_FIELDS
# Ids appear in URLs (``/compounds/c1/households/<id>``): the same rule as the API's path ids.
LOCAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
LOCAL_ID_RULE = "use 1-40 letters, digits, '_' or '-' (the id appears in web addresses)"
# Big enough for any tower block, small enough to catch a typo like 2000 floors.
MAX_FLOORS = 200
MAX_ROOMS_PER_FLOOR = 100
# IN lists stay well below every database's parameter limit.
_CHUNK = 500


class ImportRejected(Exception):
    """Some rows are wrong: nothing was imported. ``errors`` lists each bad cell, in file order."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.column))
        self.lines = len({e.line for e in self.errors})
        super().__init__(f"{self.lines} {'row has' if self.lines == 1 else 'rows have'} errors; nothing was imported")


# --- validation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildingRow:
    line: int
    building: str
    number: str
    floors: int
    rooms_per_floor: int
    lifts: int
    lift_capacity: int


def building_id_for(number: str) -> str | None:
    """A building's id when the sheet gives none: "12号楼" → b12; None when the number is no plain number."""
    label = building_label(number)
    return f"b{label}" if label.replace("-", "").isdigit() else None


def validate_building_rows(
    rows: Iterable[Mapping[str | None, str | None]], present: Iterable[str] | None = None
) -> tuple[list[BuildingRow], list[RowError]]:
    """Check every row of a buildings sheet; like ``domain.validate_rows``, lines start at 2."""
    good: list[BuildingRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    fields = set(present) if present is not None else None
    for line, raw in enumerate(rows, start=2):
        if fields is None:
            fields = {k for k in raw if k is not None}
        if line == 2:
            missing = [c for c in BUILDING_COLUMNS[1:] if c not in fields]
            if missing:
                return [], [RowError.of(1, c, "column-missing", field=c) for c in missing]
        bad: list[RowError] = []
        if raw.get(None) is not None:
            bad.append(RowError.of(line, "", "extra-cells"))
        cell = {c: (raw.get(c) or "").strip() for c in BUILDING_COLUMNS}
        building = cell["building"] or building_id_for(cell["number"]) or ""
        if not cell["building"] and cell["number"] and not building:
            bad.append(RowError.of(line, "number", "building-id-needed", number=cell["number"]))
        elif not building:
            bad.append(RowError.of(line, "building", "required", field="building"))
        elif not LOCAL_ID.match(building):
            bad.append(RowError.of(line, "building", "local-id"))
        elif (first := seen.setdefault(building, line)) != line:
            bad.append(RowError.of(line, "building", "building-repeated", building=building, first=first))
        if not cell["number"]:
            bad.append(RowError.of(line, "number", "required", field="number"))
        elif len(cell["number"]) > 40:
            bad.append(RowError.of(line, "number", "number-too-long"))
        numbers: dict[str, int] = {}
        limits = {"floors": (1, MAX_FLOORS), "rooms_per_floor": (1, MAX_ROOMS_PER_FLOOR), "lifts": (0, 50)}
        limits["lift_capacity"] = (0, 100)
        for column, (low, high) in limits.items():
            try:
                numbers[column] = int(cell[column])
            except ValueError:
                if not cell[column]:
                    bad.append(RowError.of(line, column, "required", field=column))
                else:
                    bad.append(RowError.of(line, column, "not-a-whole-number", value=cell[column]))
                continue
            if not low <= numbers[column] <= high:
                bad.append(RowError.of(line, column, "out-of-range", low=low, high=high))
        if numbers.get("lifts", 0) > 0 and numbers.get("lift_capacity") == 0:
            bad.append(RowError.of(line, "lift_capacity", "lift-capacity-needed"))
        if bad:
            errors.extend(bad)
            continue
        good.append(BuildingRow(line, building, cell["number"], **numbers))
    return good, errors


def registered_buildings(session: Session, compound: str) -> BuildingIndex:
    """The compound's buildings as the row checks need them (id, number, size)."""
    return BuildingIndex(
        RegisteredBuilding(local_id(row.building), row.number, row.floors, row.rooms_per_floor)
        for row in session.execute(select(views.buildings).where(views.buildings.c.compound == compound))
    )


def validate_resident_rows(
    sheet: Sheet, headings: HeadingMap, today: date, buildings: BuildingIndex
) -> list[ImportRow]:
    """Every row of a residents sheet checked on its own (``domain.validate_rows``) and for URL-safe ids."""
    good, errors = validate_rows(sheet.rows(headings), today=today, buildings=buildings, present=headings.present)
    for row in good:
        for column in ("building", "household", "resident"):
            value = getattr(row, column)
            if value and not LOCAL_ID.match(value):
                errors.append(RowError.of(row.line, column, "local-id"))
    if errors:
        raise ImportRejected(sheet.relocate(errors))
    if not good:
        raise ImportRejected([RowError.of(2, "", "no-rows")])
    return [replace(row, line=sheet.line(row.line)) for row in good]


def parse_buildings(sheet: Sheet, headings: HeadingMap) -> list[BuildingRow]:
    good, errors = validate_building_rows(sheet.rows(headings), headings.present)
    if errors:
        raise ImportRejected(sheet.relocate(errors))
    if not good:
        raise ImportRejected([RowError.of(2, "", "no-rows")])
    return [replace(row, line=sheet.line(row.line)) for row in good]


# --- applying ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    created: int = 0
    changed: int = 0
    unchanged: int = 0


@dataclass
class ImportResult:
    """What an import did; ``changes`` counts the change events by kind."""

    rows: int
    buildings: Tally = field(default_factory=Tally)
    households: Tally = field(default_factory=Tally)
    residents: Tally = field(default_factory=Tally)
    changes: dict[str, int] = field(
        default_factory=lambda: {"moved": 0, "needs_changed": 0, "identity_corrected": 0, "representative_chosen": 0}
    )
    events: int = 0


def import_buildings(
    session: Session,
    store: EventStore,
    compound: str,
    rows: Sequence[BuildingRow],
    *,
    actor: str | None = None,
    report: Report | None = None,
) -> ImportResult:
    """Register the new buildings; a building already registered must match its row exactly.

    ``report`` is told (rows done, rows) as each row is compared with the register.
    """
    lock_appends(session)  # the register cannot change between our check and our append
    known = {
        row.building: row
        for row in session.execute(select(views.buildings).where(views.buildings.c.compound == compound))
    }
    errors: list[RowError] = []
    result = ImportResult(rows=len(rows))
    fresh: list[Building] = []
    for done, row in enumerate(rows, start=1):
        if report is not None:
            report(done, len(rows))
        existing = known.get(global_id(compound, row.building))
        if existing is None:
            building = Building(global_id(compound, row.building))
            building.register(row.number, row.floors, row.rooms_per_floor, row.lifts, row.lift_capacity)
            fresh.append(building)
            continue
        for column in BUILDING_COLUMNS[1:]:
            if str(getattr(existing, column)) != str(getattr(row, column)):
                value = getattr(existing, column)
                errors.append(
                    RowError.of(
                        row.line, column, "building-registered-differently", building=row.building, field=column,
                        value=value,
                    )
                )  # fmt: skip
                break
        else:
            result.buildings.unchanged += 1
    if errors:
        raise ImportRejected(errors)
    result.events = len(_save_all(session, store, compound, fresh, actor))
    result.buildings.created = len(fresh)
    return result


def _save_all(
    session: Session, store: EventStore, compound: str, aggregates: Sequence[Aggregate], actor: str | None
) -> list[Envelope]:
    """Append what every aggregate recorded in one batch (each at the version it was loaded at)."""
    assert all(not a.snapshot_every for a in aggregates), "snapshots are kept by Repository.save only"
    changed = [a for a in aggregates if a.pending()]
    appended = store.append_many(
        session, [(a.stream_id(a.id), a.pending(), a.version, compound) for a in changed], actor=actor
    )
    for aggregate in changed:
        aggregate.mark_saved()
    return appended


def _identity(row: ImportRow) -> dict[str, str | None]:
    return {"name": row.name, "phone": row.phone or None, "id_number": row.id_number or None}


def _with_register(
    row: ImportRow, resident: Any, needs_of: Mapping[str, Needs], current: Mapping[str, dict[str, Any] | None]
) -> ImportRow:
    """A row of a registered resident with what its sheet has no column for taken from the register."""
    if resident is None:
        return row
    registered = needs_of[resident.resident]
    needs = Needs(**{f: getattr(row.needs if f in row.present else registered, f) for f in NEEDS_COLUMNS})
    identity = current.get(resident.resident) or {}
    phone = row.phone if "phone" in row.present else identity.get("phone") or ""
    id_number = row.id_number if "id_number" in row.present else identity.get("id_number") or ""
    # An age says the birth year give or take one: the registered year stands.
    return replace(row, needs=needs, phone=phone, id_number=id_number, birth_year=resident.birth_year)


def _name_residents(
    session: Session, vault: Vault, compound: str, rows: Sequence[ImportRow]
) -> tuple[list[ImportRow], dict[str, dict[str, Any] | None]]:
    """Give each row without a resident id the id of the registered resident it is, or a new one.

    A resident is found by ID-card number anywhere in the compound (so a move is a move), else by name in the
    same flat; one not found gets ``<household>-<n>``. Also answers the identities it opened, by global id.
    """
    registered = session.execute(
        select(views.residents.c.resident, views.residents.c.household, views.residents.c.identity,
               views.residents.c.erased).where(views.residents.c.compound == compound)
    ).all()  # fmt: skip
    taken = {row.resident for row in registered}
    opened = vault.unseal_many(
        session, {row.resident: row.identity for row in registered if not row.erased and row.identity}
    )
    by_id_number: dict[str, str] = {}
    by_name: dict[tuple[str, str], list[str]] = {}
    for row in registered:
        identity = opened.get(row.resident)
        if identity:
            if identity.get("id_number"):
                by_id_number[identity["id_number"]] = row.resident
            by_name.setdefault((row.household, identity.get("name") or ""), []).append(row.resident)
    claimed = {global_id(compound, row.resident) for row in rows if row.resident}
    named: list[ImportRow] = []
    for row in rows:
        if row.resident:
            named.append(row)
            continue
        household = global_id(compound, row.household)
        rid = by_id_number.get(row.id_number) if row.id_number else None
        if rid is None:
            rid = next(
                (r for r in by_name.get((household, row.name), [])
                 if not (row.id_number and (opened.get(r) or {}).get("id_number") not in (None, row.id_number))),
                None,
            )  # fmt: skip
        if rid is None or rid in claimed:
            number = 1
            while (rid := f"{household}-{number}") in taken or rid in claimed:
                number += 1
        claimed.add(rid)
        named.append(replace(row, resident=local_id(rid)))
    return named, opened


def _load_many(session: Session, store: EventStore, kind: type[Aggregate], ids: Iterable[str]) -> dict[str, Any]:
    """Aggregates rebuilt from their streams with one query per few hundred streams, not one per stream."""
    loaded = {id: kind(id) for id in ids}
    streams = {kind.stream_id(id): loaded[id] for id in loaded}
    names = list(streams)
    for start in range(0, len(names), _CHUNK):
        rows = session.execute(
            select(events_table)
            .where(events_table.c.stream_id.in_(names[start : start + _CHUNK]))
            .order_by(events_table.c.stream_id, events_table.c.version)
        ).mappings()
        envelopes = []
        for row in rows:
            type_name, data = store.registry.upcast(row["type"], json.loads(row["data"]))
            envelopes.append(envelope_from_row(row, store.source, data=data, type_name=type_name))
        for envelope in store.open_sealed(session, envelopes):  # the needs flags, opened in one batch
            streams[envelope.subject].replay([store.decode(envelope)])
    return loaded


def _in_chunks(session: Session, query: Any, column: Any, values: Sequence[str]) -> Iterator[Any]:
    for start in range(0, len(values), _CHUNK):
        yield from session.execute(query.where(column.in_(values[start : start + _CHUNK])))


def import_residents(
    session: Session,
    store: EventStore,
    vault: Vault,
    compound: str,
    rows: Sequence[ImportRow],
    *,
    today: date,
    actor: str | None = None,
    report: Report | None = None,
) -> ImportResult:
    """Register new households and residents, and record what changed for those already registered.

    ``report`` is told (rows done, rows) as each row's changes are recorded.

    A resident already registered elsewhere moves; changed needs, identity or representative are
    recorded as their change events; everything else is left alone (no event). Residents missing from the
    file stay registered, and an empty representative cell never removes a representative.
    """
    lock_appends(session)  # the register cannot change between our check and our append

    def g(local: str) -> str:
        return global_id(compound, local)

    buildings = {
        row.building: row
        for row in session.execute(select(views.buildings).where(views.buildings.c.compound == compound))
    }
    households = {
        row.household: row
        for row in _in_chunks(
            session, select(views.households), views.households.c.household, sorted({g(r.household) for r in rows})
        )
    }
    known: dict[str, dict[str, Any] | None] = {}
    if any(not row.resident for row in rows):
        rows, known = _name_residents(session, vault, compound, rows)
    residents = {
        row.resident: row
        for row in _in_chunks(
            session, select(views.residents), views.residents.c.resident, sorted({g(r.resident) for r in rows})
        )
    }

    errors: list[RowError] = []
    for row in rows:
        building = buildings.get(g(row.building))
        household = households.get(g(row.household))
        resident = residents.get(g(row.resident))
        if not LOCAL_ID.match(row.resident):
            errors.append(RowError.of(row.line, "resident", "local-id"))
        if building is None:
            errors.append(RowError.of(row.line, "building", "building-unknown", building=row.building))
        elif household is None:
            flat = f"{row.floor}{row.room:02d}"
            if row.floor > building.floors:
                column = "floor" if "floor" in row.present else "room"
                errors.append(RowError.of(row.line, column, "floor-above-top", building=building.number,
                                          floors=building.floors, flat=flat, floor=row.floor))  # fmt: skip
            elif row.room > building.rooms_per_floor:
                errors.append(RowError.of(row.line, "room", "room-above-last", building=building.number,
                                          rooms=building.rooms_per_floor, flat=flat, room=row.room))  # fmt: skip
        elif (household.building, household.floor, household.room) != (g(row.building), row.floor, row.room):
            errors.append(
                RowError.of(row.line, "household", "household-registered-elsewhere", household=row.household,
                            building=local_id(household.building), floor=household.floor, room=household.room)
            )  # fmt: skip
        if resident is None:
            continue
        if resident.erased:
            errors.append(RowError.of(row.line, "resident", "resident-erased", resident=row.resident))
        elif resident.birth_year != row.birth_year and (
            row.birth_year_exact or abs(resident.birth_year - row.birth_year) > 1
        ):
            errors.append(RowError.of(row.line, "birth_year", "birth-year-registered", resident=row.resident,
                                      year=resident.birth_year))  # fmt: skip
    if errors:
        raise ImportRejected(errors)

    # Identity of those already registered, to tell a correction from a re-import.
    current = known | vault.unseal_many(
        session,
        {
            row.resident: row.identity
            for row in residents.values()
            if row.identity is not None and row.resident not in known
        },
    )
    needs_of = {
        rid: Needs(**{flag: bool(getattr(row, flag)) for flag in Needs.__dataclass_fields__})
        for rid, row in residents.items()
    }
    # A column the sheet lacks leaves what is registered as it is (a sheet of names and phones clears no needs).
    rows = [_with_register(row, residents.get(g(row.resident)), needs_of, current) for row in rows]

    # Which registered households must be loaded: those that record something.
    touched: set[str] = set()
    for row in rows:
        hid, rid = g(row.household), g(row.resident)
        resident = residents.get(rid)
        household = households.get(hid)
        changes = (
            resident is None
            or resident.household != hid
            or needs_of[rid] != row.needs
            or current.get(rid) != _identity(row)
            or (row.representative and (household is None or household.representative != rid))
        )
        if not changes:
            continue
        if household is not None:
            touched.add(hid)
        if resident is not None and resident.household != hid:
            touched.add(resident.household)
    loaded: dict[str, Household] = _load_many(session, store, Household, sorted(touched))

    result = ImportResult(rows=len(rows))
    result.buildings.unchanged = len({row.building for row in rows})
    fresh: dict[str, Household] = {}
    sealing: dict[str, dict[str, Any]] = {}
    # New residents are added after their identity is sealed in one batch.
    arrivals: list[tuple[Household, ImportRow]] = []
    corrections: list[tuple[Household, str]] = []
    for done, row in enumerate(rows, start=1):
        if report is not None:
            report(done, len(rows))
        hid, rid = g(row.household), g(row.resident)
        target = loaded.get(hid) or fresh.get(hid)
        if target is None and hid not in households:
            building = buildings[g(row.building)]
            target = fresh[hid] = Household(hid)
            target.register(
                g(row.building), row.floor, row.room, floors=building.floors, rooms_per_floor=building.rooms_per_floor
            )
        resident = residents.get(rid)
        if resident is None:
            assert target is not None
            sealing[rid] = _identity(row)
            arrivals.append((target, row))
            result.residents.created += 1
            continue
        if target is None:  # registered household, nothing to record for this row
            result.residents.unchanged += 1
            continue
        changed = False
        if resident.household != hid:
            loaded[resident.household].move_out(rid, target, today=today)
            result.changes["moved"] += 1
            changed = True
        if target.members[rid].needs != row.needs:
            target.change_needs(rid, row.needs, today=today)
            result.changes["needs_changed"] += 1
            changed = True
        if current.get(rid) != _identity(row):
            sealing[rid] = _identity(row)
            corrections.append((target, rid))
            changed = True
        result.residents.changed += changed
        result.residents.unchanged += not changed
    tokens = vault.seal_many(session, sealing)
    representatives = {g(row.household): g(row.resident) for row in rows if row.representative}
    for target, row in arrivals:
        rid = g(row.resident)
        target.add_resident(rid, row.birth_year, row.needs, today=today, identity=tokens[rid])
    for target, rid in corrections:
        target.correct_identity(rid, tokens[rid])
        result.changes["identity_corrected"] += 1
    for hid, rid in representatives.items():
        target = loaded.get(hid) or fresh.get(hid)
        if target is not None and target.representative != rid:
            target.choose_representative(rid)
            result.changes["representative_chosen"] += 1

    changed_households = {hid for hid, household in loaded.items() if household.pending()}
    result.households.created = len(fresh)
    # Households a resident left count as changed even when the file does not list them.
    result.households.changed = len(changed_households)
    result.households.unchanged = len({g(row.household) for row in rows} - changed_households - fresh.keys())
    result.events = len(_save_all(session, store, compound, [*fresh.values(), *loaded.values()], actor))
    return result
