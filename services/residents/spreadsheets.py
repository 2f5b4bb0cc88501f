"""The committee's spreadsheet files: reading an upload (CSV or XLSX) into headings and rows, and writing the
template to fill in. Old .xls workbooks and files that are no sheet at all are refused with what to do instead.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from services.residents.domain import RowError
from services.residents.domain.headings import HeadingMap, Kind, chinese_headings, fields_of
from services.residents.domain.wording import FIELD_NAMES, Language, say

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
# Blank lines are skipped, but not without end (a sheet formatted down to row 1,048,576 is refused).
MAX_LINES = 2 * MAX_ROWS
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Files people pick by mistake, by their first bytes: refused as what they are, not as broken CSV.
_NOT_SHEETS = {b"%PDF": "PDF", b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"Rar!": "RAR"}
_PROBLEMS = {
    "xls-file": "xls-file",
    "not-a-sheet": "not-a-sheet",
    "file-too-large": "file-too-large",
    "too-many-rows": "too-many-rows",
    "too-many-lines": "too-many-rows",
}
_OTHER_NAMES = (".doc", ".docx", ".pdf", ".png", ".jpg", ".jpeg", ".wps", ".et", ".numbers", ".ods", ".zip", ".rar")


class UnreadableFile(Exception):
    """The upload is not a CSV or XLSX file we can read; ``status`` is the HTTP status to answer with."""

    def __init__(self, code: str, status: int = 422, **params: object) -> None:
        self.code = code
        self.status = status
        self.params = params
        # The problem type answered: a few have their own, the rest are "unreadable-file" (``code`` says which).
        self.problem = _PROBLEMS.get(code, "unreadable-file")
        super().__init__(say(code, "en", params))

    def say_in(self, language: Language) -> str:
        return say(self.code, language, self.params)


@dataclass(frozen=True)
class Sheet:
    """The first sheet of a file: its headings as written, its rows' cells, and the line each row came from."""

    headings: list[str]
    cells: list[list[str]]
    lines: list[int]

    def rows(self, headings: HeadingMap) -> list[dict[str | None, str | None]]:
        """Each row keyed by field, like ``csv.DictReader``: a cell past the last heading goes under None."""
        taken = headings.fields
        width = len(self.headings)
        out: list[dict[str | None, str | None]] = []
        for cells in self.cells:
            row: dict[str | None, str | None] = {f: (cells[i] if i < len(cells) else None) for i, f in taken.items()}
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                row[None] = "".join(cells[width:])
            out.append(row)
        return out

    def sample(self, count: int) -> list[list[str]]:
        return [cells[: len(self.headings)] for cells in self.cells[:count]]

    def line(self, position: int) -> int:
        """The file's own line of the row at ``position`` (data from 2)."""
        return self.lines[position - 2] if 2 <= position < len(self.lines) + 2 else position

    def relocate(self, errors: Iterable[RowError]) -> list[RowError]:
        """Errors numbered by row position (data from 2) renumbered to the file's own lines."""
        return [replace(e, line=self.line(e.line)) for e in errors]


def read_sheet(content: bytes, filename: str | None = None, media_type: str | None = None) -> Sheet:
    """CSV (UTF-8, with or without BOM, or GB18030 as Chinese Excel saves it) or XLSX (first sheet)."""
    if len(content) > MAX_BYTES:
        raise UnreadableFile("file-too-large", 413, limit=MAX_BYTES)
    name = (filename or "").lower()
    if content.startswith(OLE2_MAGIC[:4]) or name.endswith(".xls"):
        raise UnreadableFile("xls-file", 415)
    for magic, what in _NOT_SHEETS.items():
        if content.startswith(magic):
            raise UnreadableFile("not-a-sheet", 415, what=what)
    if name.endswith(_OTHER_NAMES):
        raise UnreadableFile("not-a-sheet", 415, what=name.rsplit(".", 1)[-1])
    if content.startswith(b"PK\x03\x04") or name.endswith(".xlsx") or (media_type or "").startswith(XLSX_MEDIA_TYPE):
        return _read_xlsx(content)
    if b"\0" in content[:4096]:
        raise UnreadableFile("not-a-sheet", 415, what="binary")
    return _read_csv(content)


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise UnreadableFile("not-text") from None


def _read_csv(content: bytes) -> Sheet:
    text = _decode(content)
    if not text.strip():
        raise UnreadableFile("empty-file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _collect((reader.line_num, cells) for cells in reader)
    except csv.Error as exc:
        raise UnreadableFile("bad-csv", line=reader.line_num, what=str(exc)) from None


def _read_xlsx(content: bytes) -> Sheet:
    from openpyxl import load_workbook  # only imported when a workbook arrives

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnreadableFile("unreadable-xlsx", what=type(exc).__name__) from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise UnreadableFile("no-sheet")
        found = sheet.iter_rows(values_only=True)
        return _collect(
            ((number, [_cell(v) for v in values]) for number, values in enumerate(found, start=1)), "empty-sheet"
        )
    finally:
        book.close()


# A title row ("XX小区居民信息登记表", one merged cell) may stand above the headings: up to this many are passed.
_TITLE_ROWS = 3


def _collect(numbered: Iterator[tuple[int, list[str]]], empty: str = "empty-file") -> Sheet:
    """The headings (the first row with two cells or more, past any title row) and the rows with data."""
    header: list[str] | None = None
    title: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    for line, cells in numbered:
        if line > MAX_LINES:
            raise UnreadableFile("too-many-lines", limit=MAX_LINES)
        filled = sum(1 for c in cells if c.strip())
        if header is None:
            title = title or (cells if filled else None)
            if filled >= 2 or (filled and line > _TITLE_ROWS):
                header = [c.strip() for c in cells]
                while header and not header[-1]:
                    header.pop()  # trailing formatted-but-empty header cells
            continue
        if not filled:
            continue  # blank lines are spreadsheet padding, not rows
        if len(rows) >= MAX_ROWS:
            raise UnreadableFile("too-many-rows", limit=MAX_ROWS)
        rows.append(cells)
        lines.append(line)
    if header is None and title is None:
        raise UnreadableFile(empty)
    return Sheet(header or [c.strip() for c in title or []], rows, lines)


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


# --- the template -----------------------------------------------------------------------------------------

_TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "residents": ("building", "unit", "room", "name", "sex", "phone", "id_number", "birth_year", "relationship",
                  "regular_medication", "mobility_impaired", "bedridden", "pregnant", "infant", "note"),
    "buildings": ("number", "floors", "rooms_per_floor", "lifts", "lift_capacity"),
}  # fmt: skip
_EXAMPLES: dict[str, Mapping[str, object]] = {
    "residents": {"building": "12", "unit": "", "room": "1502", "name": "张三", "sex": "女",
                  "phone": "13800138000", "id_number": "31010119490315002X", "birth_year": "1949-03-15",
                  "relationship": "本人", "regular_medication": "是", "mobility_impaired": "否", "bedridden": "否",
                  "pregnant": "否", "infant": "否", "note": ""},
    "buildings": {"number": "12", "floors": 18, "rooms_per_floor": 4, "lifts": 2, "lift_capacity": 8},
}  # fmt: skip
_EXPLAINED: dict[str, tuple[str, str]] = {
    "building": ("楼号，如 12 或 12号楼（须已登记）", "The building's number, e.g. 12 (registered first)"),
    "unit": ("单元（楼栋按单元登记时填写，如 2）", "Unit, when each unit is registered as a building (12-2)"),
    "room": ("房号：1502 即 15 层 02 室；也可写 15-02、15层02室", "Flat: 1502 = floor 15, room 02; or 15-02"),
    "name": ("姓名（必填）", "Full name (required)"),
    "sex": ("性别（仅供核对，不保存）", "Sex (for checking only, not kept)"),
    "phone": ("手机号，11 位", "Mobile number, 11 digits"),
    "id_number": ("身份证号，18 位（请将此列设为文本）", "ID-card number, 18 characters (format as text)"),
    "birth_year": ("出生日期或出生年份；可不填而填身份证号或年龄", "Date or year of birth (or the ID-card number)"),
    "relationship": ("与户主关系：户主本人填“本人”", "Relationship to the head: 本人 for the head (representative)"),
    "regular_medication": ("是否长期服药：是/否", "Regular medication: 是/否 (yes/no)"),
    "mobility_impaired": ("是否行动不便：是/否", "Mobility impaired: 是/否"),
    "bedridden": ("是否卧床：是/否", "Bedridden: 是/否"),
    "pregnant": ("是否孕妇：是/否", "Pregnant: 是/否"),
    "infant": ("是否婴幼儿：是/否", "Infant: 是/否"),
    "note": ("备注（不保存）", "Note (not kept)"),
    "number": ("楼号，如 12", "The building's number, e.g. 12"),
    "floors": ("层数", "Floors"),
    "rooms_per_floor": ("每层户数", "Rooms (flats) per floor"),
    "lifts": ("电梯数，无电梯填 0", "Lifts (0 for none)"),
    "lift_capacity": ("每部电梯可乘人数，无电梯填 0", "People per lift ride (0 for none)"),
}


def template(kind: Kind) -> bytes:
    """An .xlsx to fill in: the Chinese headings and one example row, and a sheet explaining each column."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    names = chinese_headings(kind)
    columns = [c for c in _TEMPLATE_FIELDS[kind] if c in fields_of(kind)]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "居民" if kind == "residents" else "楼栋"
    sheet.append([names.get(c, c) for c in columns])
    sheet.append([_EXAMPLES[kind].get(c, "") for c in columns])
    for index, column in enumerate(columns, start=1):
        sheet.cell(1, index).font = Font(bold=True)
        letter = sheet.cell(1, index).column_letter
        sheet.column_dimensions[letter].width = 22 if column in ("id_number", "phone", "birth_year") else 12
        if column in ("id_number", "phone", "room", "building"):
            for row in range(2, 1001):  # as text, so Excel keeps 18 digits and leading zeros
                sheet.cell(row, index).number_format = "@"
    sheet.freeze_panes = "A2"
    notes = book.create_sheet("说明 Notes")
    notes.append(["标题 Heading", "字段 Field", "说明", "Explanation"])
    for column in columns:
        chinese, english = _EXPLAINED.get(column, ("", ""))
        notes.append([names.get(column, column), FIELD_NAMES.get(column, (column,))[0], chinese, english])
    notes.append([])
    notes.append(["第一个工作表的第 2 行是示例，导入前请删除。", "Row 2 of the first sheet is an example: delete it."])
    for letter, width in zip("ABCD", (14, 22, 48, 56), strict=True):
        notes.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def masked(field: str | None, value: str) -> str:
    """A sample cell as the preview shows it: phone and ID-card numbers with their middle hidden."""
    if field in ("phone", "id_number") and len(value) > 7:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    return value


__all__: Sequence[str] = ["MAX_BYTES", "MAX_ROWS", "Sheet", "UnreadableFile", "masked", "read_sheet", "template"]
