"""The rows of a register import, checked cell by cell before anything is written: ids, rooms, names, mobile
and ID-card numbers (GB 11643 check digit), birth years and needs flags. Plain Python, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from services.residents.domain.households import Needs

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
# Empty flag cells mean "no": spreadsheets leave them blank.
_BOOLEANS = {"yes": True, "true": True, "1": True, "是": True, "no": False, "false": False, "0": False, "否": False}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1\d{10}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of a resident ID-card number."""
    return ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 18-character mainland ID-card number, or None when it is."""
    if not _ID_NUMBER.match(value):
        return "an ID-card number has 17 digits and a check digit (0-9 or X)"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "the ID-card number's birth date (characters 7-14) is not a date"
    if id_check_char(value[:17]) != value[17]:
        return "the ID-card number's check digit is wrong"
    return None


def normalise_phone(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    return digits


def phone_problem(value: str) -> str | None:
    """Why ``value`` (normalised) is not a mainland mobile number, or None when it is."""
    return None if _MOBILE.match(value) else "a mobile number has 11 digits and starts with 1"


@dataclass(frozen=True)
class RowError:
    """A problem with one cell: ``line`` counts the header as line 1, so data starts on line 2."""

    line: int
    column: str
    reason: str


@dataclass(frozen=True)
class ImportRow:
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


def validate_rows(
    rows: Iterable[Mapping[str, str | None]], *, today: date | None = None
) -> tuple[list[ImportRow], list[RowError]]:
    """Check every row of an import (e.g. from ``csv.DictReader``) and report every bad cell.

    Returns the good rows and the errors; an import goes ahead only when there are no errors. Name,
    phone and ID number are checked but never leave the service (they are not in any event).
    """
    today = today or date.today()
    good: list[ImportRow] = []
    errors: list[RowError] = []
    seen_residents: dict[str, int] = {}
    seen_id_numbers: dict[str, int] = {}
    households: dict[str, tuple[tuple[str, int, int], int]] = {}
    representatives: dict[str, int] = {}
    header_checked = False
    for line, raw in enumerate(rows, start=2):
        if not header_checked:
            header_checked = True
            missing = [c for c in IMPORT_COLUMNS if c not in raw]
            if missing:
                errors.extend(RowError(1, c, "column missing from the header") for c in missing)
                return [], errors
        row_errors: list[RowError] = []

        def bad(column: str, reason: str, _line: int = line, _errors: list[RowError] = row_errors) -> None:
            _errors.append(RowError(_line, column, reason))

        if raw.get(None) is not None:  # type: ignore[call-overload]
            bad("", "the row has more cells than the header")
        cell = {c: (raw.get(c) or "").strip() for c in IMPORT_COLUMNS}

        for column in ("building", "household", "resident"):
            if not cell[column]:
                bad(column, "required")
            elif not _ID.match(cell[column]):
                bad(column, "use 1-64 letters, digits, '_', '.', ':' or '-'")

        numbers: dict[str, int] = {}
        for column in ("floor", "room"):
            try:
                numbers[column] = int(cell[column])
                if numbers[column] < 1:
                    bad(column, "must be 1 or more")
            except ValueError:
                bad(column, "required" if not cell[column] else f"not a whole number: {cell[column]!r}")

        if not cell["name"]:
            bad("name", "required")
        elif len(cell["name"]) > 100:
            bad("name", "longer than 100 characters")

        phone = normalise_phone(cell["phone"])
        if phone and not _MOBILE.match(phone):
            bad("phone", "a mobile number has 11 digits and starts with 1")

        id_number = cell["id_number"].upper()
        if id_number:
            problem = id_number_problem(id_number)
            if problem:
                bad("id_number", problem)

        birth_year = 0
        try:
            birth_year = int(cell["birth_year"])
            if not 1900 <= birth_year <= today.year:
                bad("birth_year", f"must be between 1900 and {today.year}")
            elif id_number and not id_number_problem(id_number) and int(id_number[6:10]) != birth_year:
                bad("birth_year", f"does not match the ID-card number's birth year {id_number[6:10]}")
        except ValueError:
            bad("birth_year", "required" if not cell["birth_year"] else f"not a year: {cell['birth_year']!r}")

        flags: dict[str, bool] = {}
        for column in (*NEEDS_COLUMNS, "representative"):
            value = cell[column].lower()
            if value == "":
                flags[column] = False
            elif value in _BOOLEANS:
                flags[column] = _BOOLEANS[value]
            else:
                bad(column, f"use yes/no, true/false, 1/0 or 是/否, not {cell[column]!r}")

        resident = cell["resident"]
        if resident:
            first = seen_residents.setdefault(resident, line)
            if first != line:
                bad("resident", f"resident {resident} is already on line {first}")
        if id_number:
            first = seen_id_numbers.setdefault(id_number, line)
            if first != line:
                bad("id_number", f"the same ID-card number is already on line {first}")
        household = cell["household"]
        if household and "floor" in numbers and "room" in numbers:
            place = (cell["building"], numbers["floor"], numbers["room"])
            known, first = households.setdefault(household, (place, line))
            if known != place:
                bad(
                    "household",
                    f"household {household} is in building {known[0]} floor {known[1]} room {known[2]} on line {first}",
                )
        if household and flags.get("representative"):
            first = representatives.setdefault(household, line)
            if first != line:
                bad("representative", f"household {household} already has its representative on line {first}")

        if row_errors:
            errors.extend(row_errors)
            continue
        good.append(
            ImportRow(
                line=line,
                building=cell["building"],
                floor=numbers["floor"],
                room=numbers["room"],
                household=household,
                resident=resident,
                name=cell["name"],
                phone=phone,
                id_number=id_number,
                birth_year=birth_year,
                needs=Needs(**{c: flags[c] for c in NEEDS_COLUMNS}),
                representative=flags["representative"],
            )
        )
    return good, errors
