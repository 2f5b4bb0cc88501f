"""Bulk import of the committee's spreadsheets: buildings, then households and residents (CSV or XLSX).

Reading, validating and applying are kept apart and free of HTTP: ``read_sheet`` turns a file into rows
with the line each came from, ``validate_rows`` (domain) and ``validate_building_rows`` check every row,
and ``import_buildings`` / ``import_residents`` check the rows against the register and then write
everything in the caller's one unit of work, or raise ``ImportRejected`` with every bad row and write
nothing. Importing the same file twice changes nothing: what is already registered is compared with the
read model (and the sealed identity) and only differences become events.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.ids import global_id, local_id
from juwei.aggregate import Aggregate
from juwei.events import Envelope
from juwei.store import EventStore, envelope_from_row, events_table, lock_appends
from juwei.vault import Vault
from services.residents import views
from services.residents.domain import IMPORT_COLUMNS, Building, Household, ImportRow, Needs, RowError, validate_rows

__all__ = ["IMPORT_COLUMNS", "ImportRejected", "UnreadableFile", "import_buildings", "import_residents", "read_sheet"]

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
# Blank lines are skipped, but not without end (a sheet formatted down to row 1,048,576 is refused).
MAX_LINES = 2 * MAX_ROWS
_TOO_LONG = f"the sheet goes on past line {MAX_LINES}: delete the empty rows at its end, or split it"
BUILDING_COLUMNS = ("building", "number", "floors", "rooms_per_floor", "lifts", "lift_capacity")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
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
        lines = len({e.line for e in self.errors})
        super().__init__(f"{lines} {'row has' if lines == 1 else 'rows have'} errors; nothing was imported")


class UnreadableFile(Exception):
    """The upload is not a CSV or XLSX file we can read; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422, code: str = "unreadable-file") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Sheet:
    """The first sheet of a file: its header and its rows, each with the line (row) it came from."""

    columns: list[str]
    rows: list[dict[str, str | None]]
    lines: list[int]

    def relocate(self, errors: Iterable[RowError]) -> list[RowError]:
        """Errors numbered by row position (data from 2) renumbered to the file's own lines."""
        return [replace(e, line=self._line(e.line)) for e in errors]

    def _line(self, position: int) -> int:
        return self.lines[position - 2] if 2 <= position < len(self.lines) + 2 else position


# --- reading ----------------------------------------------------------------------------------------------


def read_sheet(content: bytes, filename: str | None = None, media_type: str | None = None) -> Sheet:
    """CSV (UTF-8, with or without BOM, or GB18030 as Chinese Excel saves it) or XLSX (first sheet)."""
    if len(content) > MAX_BYTES:
        raise UnreadableFile(f"the file is larger than {MAX_BYTES} bytes", 413, "file-too-large")
    name = (filename or "").lower()
    if content.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnreadableFile("old .xls files are not read: save the sheet as .xlsx or .csv", 415, "unsupported-file")
    if content.startswith(b"PK\x03\x04") or name.endswith(".xlsx") or (media_type or "").startswith(XLSX_MEDIA_TYPE):
        return _read_xlsx(content)
    return _read_csv(content)


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise UnreadableFile("the file is neither UTF-8 nor GB18030 text, nor an XLSX workbook") from None


def _header(cells: Iterable[Any]) -> list[str]:
    return [_cell(c).strip().lower() for c in cells]


def _read_csv(content: bytes) -> Sheet:
    text = _decode(content)
    if not text.strip():
        raise UnreadableFile("the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = _header(next(reader))
        rows: list[dict[str, str | None]] = []
        lines: list[int] = []
        for cells in reader:
            if reader.line_num > MAX_LINES:
                raise UnreadableFile(_TOO_LONG, 422, "too-many-rows")
            if not any(c.strip() for c in cells):
                continue  # blank lines are spreadsheet padding, not rows
            if len(rows) >= MAX_ROWS:
                raise UnreadableFile(f"the file has more than {MAX_ROWS} rows; split it", 422, "too-many-rows")
            rows.append(_as_row(header, cells))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise UnreadableFile(f"line {reader.line_num}: not valid CSV ({exc})") from None
    return Sheet(header, rows, lines)


def _read_xlsx(content: bytes) -> Sheet:
    from openpyxl import load_workbook  # only imported when a workbook arrives

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnreadableFile(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise UnreadableFile("the workbook has no sheet")
        found = sheet.iter_rows(values_only=True)
        first = next(found, None)
        if first is None:
            raise UnreadableFile("the first sheet is empty")
        header = _header(first)
        while header and not header[-1]:
            header.pop()  # trailing formatted-but-empty header cells
        rows: list[dict[str, str | None]] = []
        lines: list[int] = []
        for number, values in enumerate(found, start=2):
            if number > MAX_LINES:
                raise UnreadableFile(_TOO_LONG, 422, "too-many-rows")
            cells = [_cell(v) for v in values]
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise UnreadableFile(f"the sheet has more than {MAX_ROWS} rows; split it", 422, "too-many-rows")
            while len(cells) > len(header) and not cells[-1].strip():
                cells.pop()
            rows.append(_as_row(header, cells))
            lines.append(number)
    finally:
        book.close()
    return Sheet(header, rows, lines)


def _cell(value: Any) -> str:
    """A spreadsheet cell as the text a committee member typed (Excel stores 13800138000 as a number)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _as_row(header: list[str], cells: list[str]) -> dict[str, str | None]:
    """Like ``csv.DictReader``: missing cells are None, extra cells go under the key None."""
    row: dict[Any, Any] = {column: (cells[i] if i < len(cells) else None) for i, column in enumerate(header)}
    if len(cells) > len(header):
        row[None] = cells[len(header) :]
    return row


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


def validate_building_rows(rows: Iterable[Mapping[str, str | None]]) -> tuple[list[BuildingRow], list[RowError]]:
    """Check every row of a buildings sheet; like ``domain.validate_rows``, lines start at 2."""
    good: list[BuildingRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(rows, start=2):
        if line == 2:
            missing = [c for c in BUILDING_COLUMNS if c not in raw]
            if missing:
                return [], [RowError(1, c, "column missing from the header") for c in missing]
        bad: list[RowError] = []
        if raw.get(None) is not None:  # type: ignore[call-overload]
            bad.append(RowError(line, "", "the row has more cells than the header"))
        cell = {c: (raw.get(c) or "").strip() for c in BUILDING_COLUMNS}
        building = cell["building"]
        if not building:
            bad.append(RowError(line, "building", "required"))
        elif not LOCAL_ID.match(building):
            bad.append(RowError(line, "building", LOCAL_ID_RULE))
        elif (first := seen.setdefault(building, line)) != line:
            bad.append(RowError(line, "building", f"building {building} is already on line {first}"))
        if not cell["number"]:
            bad.append(RowError(line, "number", "required"))
        elif len(cell["number"]) > 40:
            bad.append(RowError(line, "number", "longer than 40 characters"))
        numbers: dict[str, int] = {}
        limits = {"floors": (1, MAX_FLOORS), "rooms_per_floor": (1, MAX_ROOMS_PER_FLOOR), "lifts": (0, 50)}
        limits["lift_capacity"] = (0, 100)
        for column, (low, high) in limits.items():
            try:
                numbers[column] = int(cell[column])
            except ValueError:
                reason = "required" if not cell[column] else f"not a whole number: {cell[column]!r}"
                bad.append(RowError(line, column, reason))
                continue
            if not low <= numbers[column] <= high:
                bad.append(RowError(line, column, f"must be between {low} and {high}"))
        if numbers.get("lifts", 0) > 0 and numbers.get("lift_capacity") == 0:
            bad.append(RowError(line, "lift_capacity", "a building with lifts needs a lift capacity of at least 1"))
        if bad:
            errors.extend(bad)
            continue
        good.append(BuildingRow(line, building, cell["number"], **numbers))
    return good, errors


def validate_resident_rows(sheet: Sheet, today: date) -> list[ImportRow]:
    """Every row of a residents sheet checked on its own (``domain.validate_rows``) and for URL-safe ids."""
    good, errors = validate_rows(sheet.rows, today=today)
    for row in good:
        for column in ("building", "household", "resident"):
            if not LOCAL_ID.match(getattr(row, column)):
                errors.append(RowError(row.line, column, LOCAL_ID_RULE))
    if errors:
        raise ImportRejected(sheet.relocate(errors))
    if not good:
        raise ImportRejected([RowError(2, "", "the sheet has a header but no rows")])
    return [replace(row, line=sheet._line(row.line)) for row in good]


def parse_buildings(sheet: Sheet) -> list[BuildingRow]:
    good, errors = validate_building_rows(sheet.rows)
    if errors:
        raise ImportRejected(sheet.relocate(errors))
    if not good:
        raise ImportRejected([RowError(2, "", "the sheet has a header but no rows")])
    return [replace(row, line=sheet._line(row.line)) for row in good]


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
    session: Session, store: EventStore, compound: str, rows: Sequence[BuildingRow], *, actor: str | None = None
) -> ImportResult:
    """Register the new buildings; a building already registered must match its row exactly."""
    lock_appends(session)  # the register cannot change between our check and our append
    known = {
        row.building: row
        for row in session.execute(select(views.buildings).where(views.buildings.c.compound == compound))
    }
    errors: list[RowError] = []
    result = ImportResult(rows=len(rows))
    fresh: list[Building] = []
    for row in rows:
        existing = known.get(global_id(compound, row.building))
        if existing is None:
            building = Building(global_id(compound, row.building))
            building.register(row.number, row.floors, row.rooms_per_floor, row.lifts, row.lift_capacity)
            fresh.append(building)
            continue
        for column in BUILDING_COLUMNS[1:]:
            if str(getattr(existing, column)) != str(getattr(row, column)):
                errors.append(
                    RowError(
                        row.line,
                        column,
                        f"building {row.building} is registered with {column} {getattr(existing, column)};"
                        " a registered building cannot be changed by import",
                    )
                )
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
) -> ImportResult:
    """Register new households and residents, and record what changed for those already registered.

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
        if building is None:
            errors.append(RowError(row.line, "building", f"building {row.building} is not registered: import it first"))
        elif household is None:
            if row.floor > building.floors:
                errors.append(RowError(row.line, "floor", f"building {row.building} has floors 1..{building.floors}"))
            if row.room > building.rooms_per_floor:
                errors.append(
                    RowError(row.line, "room", f"building {row.building} has rooms 1..{building.rooms_per_floor}")
                )
        elif (household.building, household.floor, household.room) != (g(row.building), row.floor, row.room):
            errors.append(
                RowError(
                    row.line,
                    "household",
                    f"household {row.household} is registered in building {local_id(household.building)} floor"
                    f" {household.floor} room {household.room}; move its residents instead",
                )
            )
        if resident is None:
            continue
        if resident.erased:
            errors.append(RowError(row.line, "resident", f"resident {row.resident} was erased: use a new id"))
        elif resident.birth_year != row.birth_year:
            errors.append(
                RowError(
                    row.line,
                    "birth_year",
                    f"resident {row.resident} is registered with birth year {resident.birth_year};"
                    " an import cannot change it",
                )
            )
    if errors:
        raise ImportRejected(errors)

    # Identity of those already registered, to tell a correction from a re-import.
    current = vault.unseal_many(
        session, {row.resident: row.identity for row in residents.values() if row.identity is not None}
    )
    needs_of = {
        rid: Needs(**{flag: bool(getattr(row, flag)) for flag in Needs.__dataclass_fields__})
        for rid, row in residents.items()
    }

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
    for row in rows:
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
