"""A lab's result file, row by row: which heading names which column, how labs spell a result and a time, what
makes a row wrong (said in Chinese and English), and the file itself, known by its content's hash so that the
same file imported twice records nothing new. Plain Python, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from contracts.testing import LabFileImported
from juwei.aggregate import Aggregate
from services.testing.domain.cases import CLOCK_SLACK
from services.testing.domain.samples import PLATE_WELLS, RESULTS

MAX_LAB_BYTES = 5 * 1024 * 1024  # a day's file for a compound is a few hundred kB; this is ten times that
MAX_LAB_ROWS = 10_000  # results in one file (a compound of 10,000 tested one to a tube)
MAX_LISTED = 2000  # bad cells listed in one refusal (and how many there were in all)
FIELDS = ("tube", "result", "time", "plate", "well")
REQUIRED = ("tube", "result", "time")
FIRST_YEAR, LAST_YEAR = 2000, 2100

# Headings as labs and the city's system write them, compared without case, spaces, '_', '-', '.', '#' and any
# bracketed note ("检测时间（北京时间）").
_HEADINGS: dict[str, tuple[str, ...]] = {
    "tube": ("试管号", "管号", "试管编号", "试管条码", "采样管号", "采样管编号", "样本管号", "管码", "条码号",
             "tube", "tubeid", "tubeno", "tubenumber", "tubecode", "tubebarcode", "barcode"),
    "result": ("结果", "检测结果", "核酸结果", "检验结果", "核酸检测结果", "result", "testresult", "pcrresult",
               "outcome"),
    "time": ("时间", "检测时间", "报告时间", "结果时间", "检验时间", "出结果时间", "time", "testedat", "resultedat",
             "resulttime", "reportedat", "reporttime", "testtime", "datetime"),
    "plate": ("板号", "板", "检测板", "板编号", "plate", "plateid", "plateno", "platenumber"),
    "well": ("孔位", "孔号", "孔", "well", "wellposition", "position"),
}  # fmt: skip
HEADINGS: dict[str, str] = {spelling: name for name, spellings in _HEADINGS.items() for spelling in spellings}

# How a result is spelled, compared without case, spaces and brackets ("阴性(-)" is "阴性-").
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "negative": ("negative", "neg", "n", "-", "阴性", "阴", "阴性-", "未检出", "nd", "notdetected", "nonreactive"),
    "positive": ("positive", "pos", "p", "+", "阳性", "阳", "阳性+", "检出", "detected", "reactive"),
    "invalid": ("invalid", "inv", "无效", "无效样本", "样本无效", "不合格", "作废"),
}
SPELLINGS: dict[str, str] = {spelling: result for result, spellings in _SPELLINGS.items() for spelling in spellings}
assert set(SPELLINGS.values()) == set(RESULTS)

TUBE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")  # the API's own ids: the tube is a path id too
WELL = re.compile(r"^([A-H])0?([1-9]|1[0-2])$")  # A1–H12 (A01 as some readers print it)
_TIME = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+|日)"
    r"(\d{1,2})[:时](\d{1,2})分?(?:(?:(?<=分)|:)(\d{1,2})(?:\.(\d{1,6}))?秒?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_BRACKETED = re.compile(r"[(\[（【].*?[)\]）】]")

# What is wrong, in Chinese (for the person reading) and English, by code; ``{name}`` from the problem's params.
WORDING: dict[str, tuple[str, str]] = {
    "required": ("{name}为空", "the {name_en} is empty"),
    "tube-id": ("试管号 {value} 格式不对：只能用字母、数字、_ 和 -，最多 40 个字符",
                "tube {value} is no tube id: use 1-40 letters, digits, '_' or '-'"),
    "result-unknown": ("无法识别的结果“{value}”：请填 阴性、阳性 或 无效",
                       "unknown result {value!r}: write negative, positive or invalid (阴性, 阳性, 无效)"),
    "time-unreadable": ("无法识别的时间“{value}”：请写成 2022-04-12 08:30 这样的格式",
                        "unreadable time {value!r}: write it as 2022-04-12 08:30"),
    "time-implausible": ("时间 {value} 不在 {low} 到 {high} 年之间", "time {value} is not between {low} and {high}"),
    "time-in-future": ("时间 {value} 晚于现在：结果不会来自未来，请检查日期和时区",
                       "time {value} is in the future: check the date and the time zone"),
    "plate-id": ("板号 {value} 格式不对：只能用字母、数字、_ 和 -，最多 40 个字符",
                 "plate {value} is no plate id: use 1-40 letters, digits, '_' or '-'"),
    "well-invalid": ("孔位 {value} 不对：应为 A1 到 H12", "well {value} is not a well of a 96-well plate (A1-H12)"),
    "tube-twice": ("试管 {tube} 在第 {first} 行已经出现：一个文件里每个试管只能有一行",
                   "tube {tube} is already on row {first}: a file lists each tube once"),
    "well-twice": ("板 {plate} 的孔位 {well} 在第 {first} 行已经用过",
                   "well {well} of plate {plate} is on row {first} too"),
    "plate-full": ("板 {plate} 超过 {wells} 个试管", "plate {plate} holds more than {wells} tubes"),
    "tube-unknown": ("试管 {tube} 没有采样记录：请核对试管号", "tube {tube} holds no sample: check the tube id"),
    "tube-resulted": ("试管 {tube} 已记录结果（{recorded}），与文件中的“{result}”不一致：未作更改",
                      "tube {tube} already has its result ({recorded}), not {result}: nothing was changed"),
    "rule": ("试管 {tube} 的结果不能记录：{reason}", "the result of tube {tube} cannot be recorded: {reason}"),
}  # fmt: skip
FIELD_NAMES: dict[str, tuple[str, str]] = {
    "tube": ("试管号", "tube"),
    "result": ("结果", "result"),
    "time": ("时间", "time"),
    "plate": ("板号", "plate"),
    "well": ("孔位", "well"),
}
RESULT_NAMES = {"negative": "阴性", "positive": "阳性", "invalid": "无效"}


def _plain(text: str) -> str:
    """Full-width forms folded (ＡＢ１ → AB1, ： → :), surrounding spaces dropped."""
    return unicodedata.normalize("NFKC", text).strip()


def heading_key(text: str) -> str:
    return re.sub(r"[\s_\-.#:]", "", _BRACKETED.sub("", _plain(text)).lower())


@dataclass(frozen=True)
class Columns:
    """Which column (0-based) holds which field; the required fields no heading named; headings not used."""

    fields: dict[str, int]
    missing: list[str]
    unknown: list[str]
    repeated: list[str] = field(default_factory=list)


def match_headings(headings: Sequence[str]) -> Columns:
    found: dict[str, int] = {}
    unknown: list[str] = []
    repeated: list[str] = []
    for index, heading in enumerate(headings):
        if not heading.strip():
            continue
        name = HEADINGS.get(heading_key(heading))
        if name is None:
            unknown.append(heading)
        elif name in found:
            repeated.append(heading)
        else:
            found[name] = index
    return Columns(found, [f for f in REQUIRED if f not in found], unknown, repeated)


def result_of(text: str) -> str | None:
    """negative, positive or invalid as the lab spelled it; None when it is none of them."""
    key = re.sub(r"[\s()（）\[\]【】]", "", _plain(text)).lower()
    return SPELLINGS.get(key)


def time_of(text: str, zone: tzinfo) -> datetime | None:
    """A lab's time (2022-04-12 08:30, 2022/4/12 8:30:15, 2022年4月12日 8时30分, ISO 8601 with an offset);
    without an offset it is the compound's wall-clock time. None when unreadable."""
    plain = _plain(text)
    matched = _TIME.match(plain)
    if matched is None:
        try:
            moment = datetime.fromisoformat(plain)  # what a spreadsheet's own date cell gives
        except ValueError:
            return None
        if len(plain) <= 10:  # a date alone says no time of day
            return None
    else:
        year, month, day, hour, minute, second, fraction, offset = matched.groups()
        try:
            moment = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                int((fraction or "0").ljust(6, "0")),
            )  # fmt: skip
        except ValueError:
            return None
        if offset:
            try:
                moment = datetime.fromisoformat(f"{moment.isoformat()}{'+00:00' if offset == 'Z' else offset}")
            except ValueError:
                return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class LabRow:
    """One result of the file, read and checked on its own; ``line`` is the file's own row number."""

    line: int
    tube: str
    result: str
    at: datetime
    plate: str | None = None
    well: str | None = None


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one cell (``column`` a field name) or one row (``column`` empty)."""

    line: int
    column: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(self, language: str) -> str:
        chinese, english = WORDING.get(self.code, WORDING["rule"])
        values = {**self.params}
        if "name" not in values and self.column in FIELD_NAMES:
            values["name"], values["name_en"] = FIELD_NAMES[self.column]
        if language == "zh":
            for key in ("result", "recorded"):
                if key in values:
                    values[key] = RESULT_NAMES.get(values[key], values[key])
        try:
            return (chinese if language == "zh" else english).format(**values)
        except (KeyError, IndexError):
            return f"{self.code}: {dict(self.params)}"

    def listed(self, headings: Sequence[str], columns: Columns) -> dict[str, Any]:
        """As the problem lists it: the row, the column (field and heading as written), what is wrong."""
        index = columns.fields.get(self.column)
        return {
            "row": self.line,
            "column": self.column or None,
            "heading": headings[index] if index is not None and index < len(headings) else None,
            "type": self.code,
            "message": self.message("zh"),
            "message_en": self.message("en"),
            **{key: value for key, value in self.params.items() if key in ("tube", "value", "first")},
        }


def check_rows(
    cells: Sequence[Sequence[str]], lines: Sequence[int], columns: Columns, *, now: datetime, zone: tzinfo
) -> tuple[list[LabRow], list[RowProblem]]:
    """Every row checked on its own and against the rows above it (a tube once, a well once per plate)."""
    good: list[LabRow] = []
    problems: list[RowProblem] = []
    first_of_tube: dict[str, int] = {}
    first_of_well: dict[tuple[str, str], int] = {}
    on_plate: dict[str, int] = {}
    latest = now + CLOCK_SLACK
    for line, row in zip(lines, cells, strict=True):
        cell = {name: _plain(row[index]) if index < len(row) else "" for name, index in columns.fields.items()}
        bad: list[RowProblem] = []
        for name in REQUIRED:
            if not cell[name]:
                bad.append(RowProblem(line, name, "required"))
        tube = cell["tube"]
        if tube and not TUBE_ID.match(tube):
            bad.append(RowProblem(line, "tube", "tube-id", {"tube": tube, "value": tube}))
        elif tube and (first := first_of_tube.setdefault(tube, line)) != line:
            bad.append(RowProblem(line, "tube", "tube-twice", {"tube": tube, "first": first}))
        result = result_of(cell["result"]) if cell["result"] else None
        if cell["result"] and result is None:
            bad.append(RowProblem(line, "result", "result-unknown", {"tube": tube, "value": cell["result"]}))
        at = time_of(cell["time"], zone) if cell["time"] else None
        if cell["time"] and at is None:
            bad.append(RowProblem(line, "time", "time-unreadable", {"tube": tube, "value": cell["time"]}))
        elif at is not None and not FIRST_YEAR <= at.year <= LAST_YEAR:
            params = {"tube": tube, "value": cell["time"], "low": FIRST_YEAR, "high": LAST_YEAR}
            bad.append(RowProblem(line, "time", "time-implausible", params))
            at = None
        elif at is not None and at > latest:
            bad.append(RowProblem(line, "time", "time-in-future", {"tube": tube, "value": cell["time"]}))
        plate = cell.get("plate") or None
        well_text = cell.get("well") or None
        well = None
        if plate is not None and not TUBE_ID.match(plate):
            bad.append(RowProblem(line, "plate", "plate-id", {"tube": tube, "value": plate}))
            plate = None
        if well_text is not None:
            matched = WELL.match(well_text.upper())
            if matched is None:
                bad.append(RowProblem(line, "well", "well-invalid", {"tube": tube, "value": well_text}))
            else:
                well = f"{matched.group(1)}{matched.group(2)}"
        if plate is not None:
            on_plate[plate] = on_plate.get(plate, 0) + 1
            if on_plate[plate] == PLATE_WELLS + 1:
                bad.append(RowProblem(line, "plate", "plate-full", {"plate": plate, "wells": PLATE_WELLS}))
            if well is not None and (first := first_of_well.setdefault((plate, well), line)) != line:
                bad.append(RowProblem(line, "well", "well-twice", {"plate": plate, "well": well, "first": first}))
        if bad:
            problems.extend(bad)
            continue
        assert result is not None and at is not None
        good.append(LabRow(line, tube, result, at, plate, well))
    return good, problems


class LabFile(Aggregate):
    """A result file imported once: its stream is named by the SHA-256 of its bytes."""

    stream_prefix = "labfile"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.imported_at: datetime | None = None
        self.rows = 0
        self.recorded = 0

    def imported(self, digest: str, *, rows: int, recorded: int, repeated: int, at: datetime) -> None:
        assert not self.exists, "a file is imported once: its second upload is answered from the first"
        self.record(LabFileImported(file=digest, rows=rows, recorded=recorded, repeated=repeated, imported_at=at))

    def on_LabFileImported(self, event: LabFileImported) -> None:
        self.imported_at = event.imported_at
        self.rows = event.rows
        self.recorded = event.recorded


__all__ = [
    "FIELDS",
    "MAX_LAB_BYTES",
    "MAX_LAB_ROWS",
    "MAX_LISTED",
    "REQUIRED",
    "Columns",
    "LabFile",
    "LabRow",
    "RowProblem",
    "check_rows",
    "match_headings",
    "result_of",
    "time_of",
]
