"""The rows of a register import, checked cell by cell before anything is written: buildings (by id or by the
number the committee calls them), flats as the committee writes them (1502), names, mobile and ID-card numbers
(GB 11643 check digit), birth years (a year, a date, an age or the ID-card number) and needs flags. Plain
Python, no I/O: the register's buildings are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from services.residents.domain.headings import RESIDENT_FIELDS, required_missing
from services.residents.domain.households import Needs
from services.residents.domain.notation import (
    SELF,
    Refusal,
    building_label,
    flat_name,
    plain,
    read_age,
    read_birth_year,
    read_flag,
    read_flat,
    read_floor,
)
from services.residents.domain.wording import Language, say

# --- bulk import: row validation --------------------------------------------------------------------------

IMPORT_COLUMNS = (
    "building",
    "floor",
    "room",
    "household",
    "resident",
    "name",
    "phone",
    "id_number",
    "birth_year",
    "regular_medication",
    "mobility_impaired",
    "bedridden",
    "pregnant",
    "infant",
    "representative",
)
NEEDS_COLUMNS = ("regular_medication", "mobility_impaired", "bedridden", "pregnant", "infant")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1\d{10}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of a resident ID-card number."""
    return ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_number_refusal(value: str) -> str | None:
    """The code of why ``value`` is not a valid 18-character mainland ID-card number, or None when it is."""
    if not _ID_NUMBER.match(value):
        return "id-number-format"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "id-number-date"
    if id_check_char(value[:17]) != value[17]:
        return "id-number-check"
    return None


def id_number_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 18-character mainland ID-card number, or None when it is."""
    code = id_number_refusal(value)
    return say(code) if code else None


def normalise_phone(value: str) -> str:
    digits = plain(value).replace("-", "")
    if digits.startswith("+86"):
        digits = digits[3:]
    return digits


def phone_problem(value: str) -> str | None:
    """Why ``value`` (normalised) is not a mainland mobile number, or None when it is."""
    return None if _MOBILE.match(value) else "a mobile number has 11 digits and starts with 1"


@dataclass(frozen=True)
class RowError:
    """A problem with one cell: ``line`` counts the header as line 1, so data starts on line 2.

    ``column`` is the field (``""`` for the whole row), ``code`` the stable name of the problem and ``params``
    the facts its wording needs; ``reason`` is the English wording, ``say_in`` the wording in a language.
    """

    line: int
    column: str
    code: str
    params: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, line: int, column: str, code: str, **params: object) -> RowError:
        return cls(line, column, code, tuple(params.items()))

    @property
    def reason(self) -> str:
        return say(self.code, "en", dict(self.params))

    def say_in(self, language: Language) -> str:
        return say(self.code, language, dict(self.params))


@dataclass(frozen=True)
class RegisteredBuilding:
    """A building of the register as an import needs it: its id, the number it is called by, its size."""

    building: str
    number: str
    floors: int
    rooms_per_floor: int


class BuildingIndex:
    """Finds a building by its id or by the number the committee writes ("12", "12号楼", "十二栋")."""

    def __init__(self, buildings: Iterable[RegisteredBuilding]) -> None:
        self.by_id: dict[str, RegisteredBuilding] = {}
        self.by_label: dict[str, RegisteredBuilding] = {}
        self._found: dict[tuple[str, str], RegisteredBuilding | None] = {}
        for building in buildings:
            self.by_id[building.building] = building
            self.by_label.setdefault(building_label(building.number), building)
        for building in self.by_id.values():  # an id like "b12" is also found as "b12号楼"
            self.by_label.setdefault(building_label(building.building), building)

    def find(self, cell: str, unit: str = "") -> RegisteredBuilding | None:
        """The building a cell names; with a unit (单元), the building registered as "12-2", unit 1 also as "12"."""
        if (cell, unit) not in self._found:  # a sheet names its few buildings thousands of times
            self._found[cell, unit] = self._find(cell, unit)
        return self._found[cell, unit]

    def _find(self, cell: str, unit: str) -> RegisteredBuilding | None:
        if unit:
            label = f"{building_label(cell)}-{building_label(unit)}"
            found = self.by_id.get(f"{cell}-{unit}") or self.by_label.get(label)
            if found is not None or building_label(unit) != "1":
                return found
        return self.by_id.get(cell) or self.by_label.get(building_label(cell))


@dataclass(frozen=True)
class ImportRow:
    """One good row. ``resident`` is empty when the sheet has no resident ids (the import finds or makes one);
    ``present`` names the fields the sheet has, so a column it lacks never clears what is registered."""

    line: int
    building: str
    floor: int
    room: int
    household: str
    resident: str
    name: str
    phone: str
    id_number: str
    birth_year: int
    needs: Needs
    representative: bool
    present: frozenset[str] = field(default=frozenset(RESIDENT_FIELDS), compare=False, repr=False)
    birth_year_exact: bool = True  # False when counted from an age (one year either way)


def household_id(building: str, floor: int, room: int) -> str:
    """A household's id when the sheet gives none: its building and flat (b12-1502)."""
    return f"{building}-{flat_name(floor, room)}"


def validate_rows(
    rows: Iterable[Mapping[str | None, str | None]],
    *,
    today: date | None = None,
    buildings: BuildingIndex | None = None,
    present: Iterable[str] | None = None,
) -> tuple[list[ImportRow], list[RowError]]:
    """Check every row of an import (rows keyed by field, e.g. from ``csv.DictReader``) and report every bad cell.

    With ``buildings`` (the register's), a building is found by id or number, the flat checked against its
    floors and rooms, and a household without an id named after its flat. ``present`` names the fields the
    sheet has (else the first row's keys). Returns the good rows and the errors; an import goes ahead only
    when there are none. Name, phone and ID number are checked but never leave the service.
    """
    today = today or date.today()
    check = _RowCheck(today, buildings, frozenset(present) if present is not None else None)
    for line, raw in enumerate(rows, start=2):
        if check.present is None:
            check.present = frozenset(k for k in raw if k is not None)
        if line == 2 and (missing := required_missing("residents", check.present)):
            return [], [RowError.of(1, name, "column-missing", field=name) for name in missing]
        check.row(line, raw)
    return check.good, check.errors


class _RowCheck:
    """The checks of one sheet's rows, with what earlier rows said (ids, ID numbers, households seen)."""

    def __init__(self, today: date, buildings: BuildingIndex | None, present: frozenset[str] | None) -> None:
        self.today = today
        self.buildings = buildings
        self.present = present
        self.good: list[ImportRow] = []
        self.errors: list[RowError] = []
        self.seen_residents: dict[str, int] = {}
        self.seen_id_numbers: dict[str, int] = {}
        self.households: dict[str, tuple[tuple[str, int, int], int]] = {}
        self.representatives: dict[str, int] = {}

    def row(self, line: int, raw: Mapping[str | None, str | None]) -> None:
        present = self.present or frozenset()
        errors: list[RowError] = []

        def bad(column: str, code: str, **params: object) -> None:
            errors.append(RowError.of(line, column, code, **params))

        if raw.get(None) is not None:
            bad("", "extra-cells")
        cell = {c: (raw.get(c) or "").strip() for c in RESIDENT_FIELDS}

        building = self._building(cell, bad)
        for column in ("household", "resident"):
            if cell[column] and not _ID.match(cell[column]):
                bad(column, "id-format")

        place = self._flat(cell, building, bad)

        if not cell["name"]:
            bad("name", "required", field="name")
        elif len(cell["name"]) > 100:
            bad("name", "name-too-long")

        phone = normalise_phone(cell["phone"])
        if phone and not _MOBILE.match(phone):
            bad("phone", "phone-invalid")

        id_number = plain(cell["id_number"]).upper()
        id_good = False
        if id_number:
            refusal = id_number_refusal(id_number)
            if refusal:
                bad("id_number", refusal)
            id_good = refusal is None

        birth_year, exact = self._birth_year(cell, id_number if id_good else "", bad)

        flags: dict[str, bool] = {}
        for column in (*NEEDS_COLUMNS, "representative"):
            flag = read_flag(cell[column])
            if flag is None:
                bad(column, "flag-unreadable", value=cell[column])
            else:
                flags[column] = flag
        if "representative" not in present and cell["relationship"]:
            flags["representative"] = plain(cell["relationship"]) in SELF

        household = cell["household"]
        if not household and place is not None and building is not None:
            household = household_id(building, *place)
        self._against_earlier(line, cell, household, building, place, id_number, flags, bad)

        if errors:
            self.errors.extend(errors)
            return
        assert building is not None and place is not None
        self.good.append(
            ImportRow(
                line=line,
                building=building,
                floor=place[0],
                room=place[1],
                household=household,
                resident=cell["resident"],
                name=cell["name"],
                phone=phone,
                id_number=id_number,
                birth_year=birth_year,
                needs=Needs(**{c: flags[c] for c in NEEDS_COLUMNS}),
                representative=flags["representative"],
                present=present,
                birth_year_exact=exact,
            )
        )

    def _building(self, cell: dict[str, str], bad: BadCell) -> str | None:
        written = cell["building"]
        if not written:
            bad("building", "required", field="building")
            return None
        if self.buildings is None:
            if not _ID.match(written):
                bad("building", "id-format")
                return None
            return written
        found = self.buildings.find(written, cell["unit"])
        if found is None:
            label = building_label(written)
            shown = f"{label}-{building_label(cell['unit'])}" if cell["unit"] else label
            bad("building", "building-unknown", building=shown)
            return None
        return found.building

    def _flat(self, cell: dict[str, str], building: str | None, bad: BadCell) -> tuple[int, int] | None:
        if not cell["room"]:
            bad("room", "required", field="room")
            return None
        floor = cell["floor"] if "floor" in (self.present or ()) else None
        if floor:
            given = read_floor(floor)
            if isinstance(given, Refusal) or given < 1:
                if isinstance(given, Refusal):
                    bad("floor", given.code, **dict(given.params))
                else:
                    bad("floor", "must-be-positive")
                floor = None
        read = read_flat(cell["room"], floor)
        if isinstance(read, Refusal):
            if not (read.code == "room-without-floor" and cell["floor"]):  # the floor cell is wrong, and said so
                bad("room", read.code, **dict(read.params))
            return None
        if building is not None and self.buildings is not None:
            size = self.buildings.by_id[building]
            flat = flat_name(*read)
            if read[0] > size.floors:
                bad(
                    "floor" if "floor" in (self.present or ()) else "room",
                    "floor-above-top",
                    building=size.number,
                    floors=size.floors,
                    flat=flat,
                    floor=read[0],
                )
                return None
            if read[1] > size.rooms_per_floor:
                bad(
                    "room", "room-above-last", building=size.number, rooms=size.rooms_per_floor, flat=flat, room=read[1]
                )
                return None
        return read

    def _birth_year(self, cell: dict[str, str], id_number: str, bad: BadCell) -> tuple[int, bool]:
        """The birth year from its column, else the ID-card number, else the age (exact unless from an age)."""
        id_year = int(id_number[6:10]) if id_number else None
        if cell["birth_year"]:
            read = read_birth_year(cell["birth_year"])
            if isinstance(read, Refusal):
                bad("birth_year", read.code, **dict(read.params))
                return 0, True
            if not 1900 <= read <= self.today.year:
                bad("birth_year", "birth-year-range", low=1900, high=self.today.year)
            elif id_year is not None and id_year != read:
                bad("birth_year", "birth-year-id-mismatch", id_year=id_year)
            return read, True
        if id_year is not None:
            return id_year, True
        if cell["age"]:
            read = read_age(cell["age"], self.today)
            if isinstance(read, Refusal):
                bad("age", read.code, **dict(read.params))
                return 0, True
            return read, False
        if cell["id_number"]:
            return 0, True  # the ID-card number is wrong, and said so
        bad("birth_year", "birth-year-required")
        return 0, True

    def _against_earlier(
        self,
        line: int,
        cell: dict[str, str],
        household: str,
        building: str | None,
        place: tuple[int, int] | None,
        id_number: str,
        flags: dict[str, bool],
        bad: BadCell,
    ) -> None:
        """What this row says against the rows above it: one resident, ID number and flat each once."""
        resident = cell["resident"]
        if resident and (first := self.seen_residents.setdefault(resident, line)) != line:
            bad("resident", "resident-repeated", resident=resident, first=first)
        if id_number and (first := self.seen_id_numbers.setdefault(id_number, line)) != line:
            bad("id_number", "id-number-repeated", first=first)
        if household and building is not None and place is not None:
            known, first = self.households.setdefault(household, ((building, *place), line))
            if known != (building, *place):
                bad("household", "household-elsewhere", household=household, building=known[0], floor=known[1],
                    room=known[2], first=first)  # fmt: skip
        if household and flags.get("representative"):
            first = self.representatives.setdefault(household, line)
            if first != line:
                bad("representative", "representative-repeated", household=household, first=first)


class BadCell(Protocol):
    def __call__(self, column: str, code: str, **params: object) -> None: ...
