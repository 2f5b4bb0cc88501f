"""A lab's result file read into headings and rows: CSV (UTF-8 with or without BOM, or GB18030 as Chinese
Excel and the city's system save it) or XLSX (first sheet). An old .xls, a file that is no sheet at all, one
too large or too long is refused with what to do instead, in Chinese and English (``WORDING``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from services.testing.domain.labfile import MAX_LAB_BYTES, MAX_LAB_ROWS

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0"
MAX_LINES = 2 * MAX_LAB_ROWS  # blank lines are skipped, but not without end (a sheet formatted to row 1,048,576)
MAX_COLUMNS = 30  # a lab file has five columns; a sheet formatted to column XFD is not read that far
_TITLE_ROWS = 3  # a title row ("XX检测机构核酸检测结果") may stand above the headings
# Files picked by mistake, by their first bytes: refused as what they are, not as broken CSV.
_NOT_SHEETS = {b"%PDF": "PDF", b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"Rar!": "RAR"}

# The file-level refusals, in Chinese and English, by code (``{name}`` from the refusal's params).
WORDING: dict[str, tuple[str, str]] = {
    "file-too-large": ("文件超过 {limit_mb} MB：请分成几个文件上传", "the file is larger than {limit_mb} MB: split it"),
    "xls-file": ("不支持旧版 .xls 文件：请在 Excel/WPS 中“另存为” .xlsx 或 CSV 后再上传",
                 "old .xls files are not read: save it as .xlsx or CSV (Save As) and upload that"),
    "not-a-sheet": ("这是 {what} 文件，不是表格：请上传 CSV 或 XLSX",
                    "this is a {what} file, not a sheet: upload CSV or XLSX"),
    "not-text": ("无法读取此 CSV 的编码：请存为 UTF-8 或 GB18030",
                 "this CSV is neither UTF-8 nor GB18030: save it as UTF-8"),
    "bad-csv": ("CSV 第 {line} 行无法读取：{what}", "line {line} of the CSV cannot be read: {what}"),
    "unreadable-xlsx": ("无法打开此 XLSX 文件（{what}）：请重新导出",
                        "the XLSX file cannot be opened ({what}): export it again"),
    "empty-file": ("文件是空的", "the file is empty"),
    "no-rows": ("文件只有标题行，没有结果", "the file has headings but no results"),
    "too-many-rows": ("文件超过 {limit} 行：请分成几个文件上传", "the file has more than {limit} rows: split it"),
    "headings-missing": ("缺少以下列：{missing_zh}（文件中的标题：{headings}）。"
                         "请用 试管号、结果、时间 作标题，可另有 板号、孔位",
                         "columns missing: {missing} (the file's headings: {headings}); name them tube, result, time "
                         "(and plate, well if there are)"),
    "headings-repeated": ("这些列重复了：{repeated}", "these columns appear twice: {repeated}"),
    "lab-file-refused": ("文件中 {rows} 行有错误（共 {count} 处），未记录任何结果；请改正后重新上传整个文件",
                         "{rows} rows have errors ({count} in all); nothing was recorded: correct them and upload the "
                         "whole file again"),
    "no-file": ("请上传结果文件（请求体，或表单的 file 字段）",
                "send the result file as the body or as a form's file part"),
}  # fmt: skip


def say(code: str, language: str, params: dict[str, Any]) -> str:
    chinese, english = WORDING.get(code, (code, code))
    try:
        return (chinese if language == "zh" else english).format(**params)
    except (KeyError, IndexError):
        return english


class UnreadableLabFile(Exception):
    """The upload is no lab file we can read; ``status`` is the HTTP status to answer with."""

    def __init__(self, code: str, status: int = 422, **params: Any) -> None:
        self.code = code
        self.status = status
        self.params = params
        super().__init__(say(code, "en", params))


@dataclass(frozen=True)
class LabSheet:
    """The first sheet: its headings as written, its rows' cells, and each row's own line in the file."""

    headings: list[str]
    cells: list[list[str]]
    lines: list[int]


def read_lab_sheet(content: bytes, filename: str | None = None, media_type: str | None = None) -> LabSheet:
    if len(content) > MAX_LAB_BYTES:
        raise UnreadableLabFile("file-too-large", 413, limit_mb=MAX_LAB_BYTES // (1024 * 1024))
    name = (filename or "").lower()
    if content.startswith(OLE2_MAGIC) or name.endswith(".xls"):
        raise UnreadableLabFile("xls-file", 415)
    for magic, what in _NOT_SHEETS.items():
        if content.startswith(magic):
            raise UnreadableLabFile("not-a-sheet", 415, what=what)
    if not content.strip():
        raise UnreadableLabFile("empty-file")
    if content.startswith(b"PK\x03\x04") or name.endswith(".xlsx") or (media_type or "").startswith(XLSX_MEDIA_TYPE):
        return _read_xlsx(content)
    if b"\0" in content[:4096]:
        raise UnreadableLabFile("not-a-sheet", 415, what="binary")
    return _read_csv(content)


def _read_csv(content: bytes) -> LabSheet:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("gb18030")
        except UnicodeDecodeError:
            raise UnreadableLabFile("not-text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _collect((reader.line_num, cells) for cells in reader)
    except csv.Error as exc:
        raise UnreadableLabFile("bad-csv", line=reader.line_num, what=str(exc)) from None


def _read_xlsx(content: bytes) -> LabSheet:
    from openpyxl import load_workbook  # only imported when a workbook arrives

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnreadableLabFile("unreadable-xlsx", what=type(exc).__name__) from None
    try:
        if not book.worksheets:
            raise UnreadableLabFile("empty-file")
        rows = book.worksheets[0].iter_rows(values_only=True, max_col=MAX_COLUMNS)
        return _collect((number, [_cell(v) for v in values]) for number, values in enumerate(rows, start=1))
    except UnreadableLabFile:
        raise
    except Exception as exc:  # a workbook broken inside (its XML, its styles): a file to export again, not a 500
        raise UnreadableLabFile("unreadable-xlsx", what=type(exc).__name__) from None
    finally:
        book.close()


def _collect(numbered: Iterator[tuple[int, list[str]]]) -> LabSheet:
    """The headings (the first row with two cells or more, past any title row) and the rows with data."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    for line, cells in numbered:
        if line > MAX_LINES:
            raise UnreadableLabFile("too-many-rows", limit=MAX_LAB_ROWS)
        filled = sum(1 for c in cells if c.strip())
        if header is None:
            if filled >= 2 or (filled and line > _TITLE_ROWS):
                header = [c.strip() for c in cells]
                while header and not header[-1]:
                    header.pop()  # trailing formatted-but-empty heading cells
            continue
        if not filled:
            continue  # blank lines are spreadsheet padding, not rows
        if len(rows) >= MAX_LAB_ROWS:
            raise UnreadableLabFile("too-many-rows", limit=MAX_LAB_ROWS)
        rows.append(cells)
        lines.append(line)
    if header is None:
        raise UnreadableLabFile("empty-file")
    if not rows:
        raise UnreadableLabFile("no-rows")
    return LabSheet(header, rows, lines)


def _cell(value: Any) -> str:
    """A spreadsheet cell as the text the lab wrote (Excel keeps a barcode of digits as a number)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
