"""A lab's result file read and checked row by row, as plain Python: headings in Chinese and English, results and
times as labs spell them, every bad cell named (row, column, Chinese and English), and the file's own refusals
(.xls, empty, too large, too long, no sheet at all)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from services.testing.domain.labfile import (
    MAX_LAB_BYTES,
    MAX_LAB_ROWS,
    LabFile,
    check_rows,
    match_headings,
    result_of,
    time_of,
)
from services.testing.labsheets import UnreadableLabFile, read_lab_sheet

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2022, 4, 12, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai


def _check(text: str, now: datetime = NOW):
    sheet = read_lab_sheet(text.encode())
    columns = match_headings(sheet.headings)
    rows, problems = check_rows(sheet.cells, sheet.lines, columns, now=now, zone=SHANGHAI)
    return sheet, columns, rows, problems


@pytest.mark.parametrize(
    ("headings", "expected"),
    [
        (
            ["试管号", "检测结果", "检测时间", "板号", "孔位"],
            {"tube": 0, "result": 1, "time": 2, "plate": 3, "well": 4},
        ),
        (["管号", "结果", "时间"], {"tube": 0, "result": 1, "time": 2}),
        (
            ["Tube ID", "Result", "Tested at", "Plate", "Well"],
            {"tube": 0, "result": 1, "time": 2, "plate": 3, "well": 4},
        ),
        (["序号", "tube_no", "检测时间（北京时间）", "RESULT"], {"tube": 1, "time": 2, "result": 3}),
    ],
)
def test_headings_in_chinese_and_english_name_the_columns(headings: list[str], expected: dict[str, int]) -> None:
    columns = match_headings(headings)
    assert columns.fields == expected and columns.missing == []


def test_a_missing_or_repeated_heading_is_said() -> None:
    columns = match_headings(["姓名", "试管号", "结果", "结果"])
    assert columns.missing == ["time"] and columns.unknown == ["姓名"] and columns.repeated == ["结果"]


@pytest.mark.parametrize(
    ("spelled", "result"),
    [
        ("阴性", "negative"), ("阴性(-)", "negative"), ("阴性（-）", "negative"), ("未检出", "negative"),
        ("Negative", "negative"), ("N", "negative"), (" neg ", "negative"), ("-", "negative"),
        ("阳性", "positive"), ("阳性(+)", "positive"), ("POSITIVE", "positive"), ("p", "positive"), ("+", "positive"),
        ("无效", "invalid"), ("Invalid", "invalid"), ("阴阳", None), ("maybe", None), ("", None),
    ],
)  # fmt: skip
def test_results_as_labs_spell_them(spelled: str, result: str | None) -> None:
    assert result_of(spelled) == result


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2022-04-12 08:30", datetime(2022, 4, 12, 8, 30, tzinfo=SHANGHAI)),
        ("2022/4/12 8:30:15", datetime(2022, 4, 12, 8, 30, 15, tzinfo=SHANGHAI)),
        ("2022年4月12日 8时30分", datetime(2022, 4, 12, 8, 30, tzinfo=SHANGHAI)),
        ("2022-04-12T08:30:00", datetime(2022, 4, 12, 8, 30, tzinfo=SHANGHAI)),
        ("2022-04-12T00:30:00Z", datetime(2022, 4, 12, 0, 30, tzinfo=UTC)),
        ("２０２２－０４－１２　０８：３０", datetime(2022, 4, 12, 8, 30, tzinfo=SHANGHAI)),
        ("2022-04-12", None),  # a date alone says no time of day
        ("2022-02-30 08:30", None),
        ("昨天", None),
    ],
)
def test_times_as_labs_write_them(written: str, expected: datetime | None) -> None:
    found = time_of(written, SHANGHAI)
    assert found == expected
    if expected is not None:
        assert found is not None and found.utcoffset() == expected.utcoffset()


def test_good_rows_are_read_with_their_own_line_numbers() -> None:
    text = (
        "某检测机构核酸检测结果\n试管号,结果,时间,板号,孔位\n"
        "T1,阴性,2022-04-12 08:30,L1,A01\n\nT2,阳性,2022-04-12 09:00,L1,h12\n"
    )
    _sheet, _columns, rows, problems = _check(text)
    assert problems == []
    assert [(r.line, r.tube, r.result, r.plate, r.well) for r in rows] == [
        (3, "T1", "negative", "L1", "A1"),
        (5, "T2", "positive", "L1", "H12"),
    ]
    assert rows[0].at == datetime(2022, 4, 12, 0, 30, tzinfo=UTC)


def test_every_bad_cell_is_named_with_its_row_and_column_in_chinese_and_english() -> None:
    text = (
        "试管号,检测结果,检测时间,板号,孔位\n"
        "T1,阴性,2022-04-12 08:30,L1,A1\n"  # 2: fine
        ",阳性,2022-04-12 08:30,L1,A2\n"  # 3: no tube
        "T3,maybe,昨天,L1,A3\n"  # 4: result and time unreadable
        "T1,阴性,2022-04-12 08:30,L1,A4\n"  # 5: T1 twice
        "T5,阴性,2022-04-13 08:30,L1,A1\n"  # 6: tomorrow; A1 of L1 twice
        "T6,阴性,1999-04-12 08:30,L 1,Z9\n"  # 7: year, plate id, well
        "T 7,阴性,2022-04-12 08:30,,\n"  # 8: tube id
    )
    sheet, columns, rows, problems = _check(text)
    assert [r.tube for r in rows] == ["T1"]
    assert [(p.line, p.column, p.code) for p in problems] == [
        (3, "tube", "required"),
        (4, "result", "result-unknown"),
        (4, "time", "time-unreadable"),
        (5, "tube", "tube-twice"),
        (6, "time", "time-in-future"),
        (6, "well", "well-twice"),
        (7, "time", "time-implausible"),
        (7, "plate", "plate-id"),
        (7, "well", "well-invalid"),
        (8, "tube", "tube-id"),
    ]
    listed = {(e["row"], e["column"]): e for e in (p.listed(sheet.headings, columns) for p in problems)}
    twice = listed[(5, "tube")]
    assert twice["heading"] == "试管号" and twice["first"] == 2 and twice["tube"] == "T1"
    assert twice["message"] == "试管 T1 在第 2 行已经出现：一个文件里每个试管只能有一行"
    assert twice["message_en"] == "tube T1 is already on row 2: a file lists each tube once"
    assert listed[(3, "tube")]["message"] == "试管号为空" and listed[(3, "tube")]["message_en"] == "the tube is empty"
    assert "阴性、阳性 或 无效" in listed[(4, "result")]["message"]
    assert listed[(6, "time")]["heading"] == "检测时间" and "晚于现在" in listed[(6, "time")]["message"]


def test_a_clock_a_few_minutes_ahead_is_no_future() -> None:
    text = "tube,result,time\nT1,negative,2022-04-12 20:05\nT2,negative,2022-04-12 20:30\n"
    _sheet, _columns, rows, problems = _check(text, now=NOW)
    assert [r.tube for r in rows] == ["T1"] and [(p.line, p.code) for p in problems] == [(3, "time-in-future")]


def test_a_plate_holds_96_tubes() -> None:
    lines = [f"T{n},negative,2022-04-12 08:30,L1" for n in range(97)]
    _sheet, _columns, rows, problems = _check("tube,result,time,plate\n" + "\n".join(lines))
    assert len(rows) == 96 and [(p.line, p.code) for p in problems] == [(98, "plate-full")]


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_with_date_cells_and_numeric_barcodes() -> None:
    content = _xlsx([["试管号", "结果", "时间"], [20220412001, "阴性", datetime(2022, 4, 12, 8, 30)]])
    sheet = read_lab_sheet(content, "结果.xlsx")
    rows, problems = check_rows(sheet.cells, sheet.lines, match_headings(sheet.headings), now=NOW, zone=SHANGHAI)
    assert problems == [] and rows[0].tube == "20220412001" and rows[0].at.hour == 8 and rows[0].line == 2


def test_a_gb18030_csv_as_chinese_excel_saves_it() -> None:
    sheet = read_lab_sheet("试管号,结果,时间\nT1,阳性,2022-04-12 08:30\n".encode("gb18030"))
    assert sheet.headings == ["试管号", "结果", "时间"] and sheet.cells == [["T1", "阳性", "2022-04-12 08:30"]]


@pytest.mark.parametrize(
    ("content", "filename", "code", "status"),
    [
        (b"", None, "empty-file", 422),
        (b"  \n\n", None, "empty-file", 422),
        ("试管号,结果,时间\n".encode(), None, "no-rows", 422),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "results.xls", "xls-file", 415),
        (b"tube,result,time\n", "results.xls", "xls-file", 415),
        (b"%PDF-1.4 ...", None, "not-a-sheet", 415),
        (b"PK\x03\x04 broken", "r.xlsx", "unreadable-xlsx", 422),
        (b"tube,result\x00,time", None, "not-a-sheet", 415),
        (b"\xff\xfe\xfa\xfb tube", None, "not-text", 422),
        (b"x" * (MAX_LAB_BYTES + 1), None, "file-too-large", 413),
        (("tube,result,time\n" + "T,N,2022-04-12 08:30\n" * (MAX_LAB_ROWS + 1)).encode(), None, "too-many-rows", 422),
    ],
)
def test_files_that_are_no_lab_file_are_refused_saying_what_to_do(
    content: bytes, filename: str | None, code: str, status: int
) -> None:
    with pytest.raises(UnreadableLabFile) as refused:
        read_lab_sheet(content, filename)
    assert (refused.value.code, refused.value.status) == (code, status)
    assert str(refused.value)  # said in English; Chinese from the same catalogue


def test_a_file_is_imported_once() -> None:
    lab = LabFile("c1:lab-abc")
    lab.imported("abc", rows=3, recorded=2, repeated=1, at=NOW)
    again = LabFile("c1:lab-abc").replay(lab.pending())
    assert again.exists and (again.rows, again.recorded, again.imported_at) == (3, 2, NOW)
    with pytest.raises(AssertionError):
        again.imported("abc", rows=3, recorded=0, repeated=3, at=NOW + timedelta(hours=1))
