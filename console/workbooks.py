"""An export as a spreadsheet: a title row, the headings, the rows (openpyxl), and how the browser saves it.

The console writes what the services answered and nothing else: identity they masked stays masked.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Cell = str | int | float | None


@dataclass
class Table:
    """One export, already in the person's language: its sheet title, headings and rows."""

    title: str
    headings: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str | None = None  # a line under the title (the round, the day, what is missing)


def workbook_bytes(table: Table) -> bytes:
    """The .xlsx: the title in A1, an optional note in A2, then the headings (bold, frozen) and the rows."""
    book = Workbook()
    sheet = book.active
    sheet.title = table.title[:31]  # Excel's limit for a sheet name
    sheet.append([table.title])
    sheet["A1"].font = Font(bold=True, size=14)
    if table.note:
        sheet.append([table.note])
    sheet.append(table.headings)
    heading_row = sheet.max_row
    for cell in sheet[heading_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="center")
    for row in table.rows:
        sheet.append(list(row))
    sheet.freeze_panes = sheet.cell(row=heading_row + 1, column=1)
    for index, heading in enumerate(table.headings, start=1):
        values: Sequence[Cell] = [heading, *(row[index - 1] for row in table.rows[:500] if len(row) >= index)]
        # CJK characters are about twice as wide as Latin ones in a spreadsheet's column.
        width = max(_width(value) for value in values)
        sheet.column_dimensions[get_column_letter(index)].width = min(60, max(8, width + 2))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _width(value: Cell) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def attachment(filename: str, fallback: str) -> str:
    """Content-Disposition for a download named in Chinese, with an ASCII name for old browsers."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
