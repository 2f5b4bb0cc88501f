"""The committee's own sheets, read without I/O: headings as committees write them, flats as 1502, buildings as
12号楼, birth years from a date, an age or the ID-card number, and every problem in English and Chinese."""

from __future__ import annotations

from datetime import date

import pytest

from services.residents.domain import BuildingIndex, Needs, RegisteredBuilding, RowError, id_check_char, validate_rows
from services.residents.domain.headings import heading_key, map_headings, recognise
from services.residents.domain.notation import (
    Refusal,
    building_label,
    chinese_number,
    read_age,
    read_birth_year,
    read_flag,
    read_flat,
)
from services.residents.domain.wording import _SAYINGS, language_of, say

TODAY = date(2022, 4, 10)


@pytest.mark.parametrize(
    ("heading", "field"),
    [
        ("楼号", "building"), ("楼栋", "building"), ("楼栋号", "building"), ("幢", "building"), (" 楼 号 ", "building"),
        ("单元", "unit"), ("房号", "room"), ("门牌号", "room"), ("室", "room"), ("层", "floor"), ("楼层", "floor"),
        ("姓名", "name"), ("姓名*", "name"), ("*姓名", "name"), ("姓名（必填）", "name"), ("姓名(必填)", "name"),
        ("姓名【必填】", "name"), ("手机号", "phone"), ("手机", "phone"), ("联系电话", "phone"), ("电话", "phone"),
        ("手机号码(11位)", "phone"), ("身份证号", "id_number"), ("身份证", "id_number"), ("证件号码", "id_number"),
        ("身份证号码*", "id_number"), ("性别", "sex"), ("出生日期", "birth_year"),
        ("出生日期(yyyy-mm-dd)", "birth_year"),
        ("年龄", "age"), ("是否户主", "representative"), ("户主", "representative"), ("与户主关系", "relationship"),
        ("备注", "note"), ("长期服药", "regular_medication"), ("婴幼儿", "infant"),
        # English keeps working, in any case and spacing
        ("building", "building"), ("Birth Year", "birth_year"), ("id_number", "id_number"), ("ID-number", "id_number"),
        ("regular_medication", "regular_medication"), ("REPRESENTATIVE", "representative"),
        # full-width (全角) letters, brackets and asterisk
        ("ｂｕｉｌｄｉｎｇ", "building"), ("姓名＊", "name"), ("手机号（选填）", "phone"), ("\u3000房号\u3000", "room"),
    ],
)  # fmt: skip
def test_headings_committees_write_are_recognised(heading: str, field: str) -> None:
    assert recognise(heading, "residents") == field


def test_unknown_headings_and_a_mapping() -> None:
    assert recognise("微信号", "residents") is None and heading_key("  手机号（必填）* ") == "手机号"
    sheet = ["楼号", "房号", "居民", "微信号", "身份证号", "", "出生日期"]
    found = map_headings(sheet, "residents")
    assert found.missing == ["name"] and found.unknown == ["居民", "微信号"] and not found.ready
    assert [h.position for h in found.headings] == [1, 2, 3, 4, 5, 7]  # a blank heading is no column
    mapped = map_headings(sheet, "residents", {"居民": "name", "微信号": None})
    assert mapped.ready and mapped.unknown == [] and mapped.fields == {0: "building", 1: "room", 2: "name",
                                                                       4: "id_number", 6: "birth_year"}  # fmt: skip
    assert [h.chosen for h in mapped.headings] == [False, False, True, True, False, False]
    # a mapping overrides what is recognised, and may name the heading in its compared form
    swapped = map_headings(["楼号", "房号", "姓名", "电话", "身份证号"], "residents", {"电话 *": "note"})
    assert swapped.fields[3] == "note"
    wrong = map_headings(sheet, "residents", {"居民": "nickname"})
    assert wrong.bad_mapping == [("居民", "nickname")] and not wrong.ready
    # birth year, age or ID-card number: any one will do
    assert map_headings(["楼号", "房号", "姓名", "年龄"], "residents").missing == []
    assert map_headings(["楼号", "房号", "姓名"], "residents").missing == ["birth_year"]
    buildings = map_headings(["楼号", "层数", "每层户数", "电梯数", "电梯载客人数"], "buildings")
    assert buildings.ready and list(buildings.fields.values()) == ["number", "floors", "rooms_per_floor", "lifts",
                                                                   "lift_capacity"]  # fmt: skip


@pytest.mark.parametrize(
    ("room", "floor", "flat"),
    [
        ("1502", None, (15, 2)), ("302", None, (3, 2)), ("15-02", None, (15, 2)), ("15-2", None, (15, 2)),
        ("15层02室", None, (15, 2)), ("1502室", None, (15, 2)), ("１５０２", None, (15, 2)), ("15F02", None, (15, 2)),
        ("15楼02", None, (15, 2)), (" 2101 ", None, (21, 1)), ("10203", None, (102, 3)),
        ("2", "15", (15, 2)), ("02", "15层", (15, 2)), ("1502", "15", (15, 2)), ("1", "1", (1, 1)),
    ],
)  # fmt: skip
def test_flats_as_the_committee_writes_them(room: str, floor: str | None, flat: tuple[int, int]) -> None:
    assert read_flat(room, floor) == flat


@pytest.mark.parametrize(
    ("room", "floor", "code"),
    [
        ("2", None, "room-without-floor"), ("A12", None, "room-notation"), ("15-", None, "room-notation"),
        ("1502", "14", "room-floor-mismatch"), ("002", None, "floor-below-one"), ("1500", None, "room-below-one"),
        ("2", "十五", "floor-not-a-number"),
    ],
)  # fmt: skip
def test_flats_that_cannot_be_read_say_why(room: str, floor: str | None, code: str) -> None:
    refused = read_flat(room, floor)
    assert isinstance(refused, Refusal) and refused.code == code


def test_buildings_birth_years_and_flags() -> None:
    assert [building_label(t) for t in ("12", "12号楼", "12栋", "第12幢", "十二号楼", "012", "B12", "１２号")] == [
        "12", "12", "12", "12", "12", "12", "b12", "12"]  # fmt: skip
    assert [chinese_number(t) for t in ("一", "十", "十二", "二十", "九十九", "百")] == [1, 10, 12, 20, 99, None]
    for text in (
        "1985",
        "1985-03-02",
        "1985/3/2",
        "1985年3月2日",
        "1985.03",
        "198503",
        "19850302",
        "1985-03-02T00:00:00",
    ):
        assert read_birth_year(text) == 1985, text
    assert isinstance(read_birth_year("85年"), Refusal)
    assert (
        read_age("70", TODAY) == 1952
        and read_age("70岁", TODAY) == 1952
        and isinstance(read_age("七十", TODAY), Refusal)
    )
    assert [read_flag(t) for t in ("是", "否", "", "√", "yes", "0", "也许")] == [
        True,
        False,
        False,
        True,
        True,
        False,
        None,
    ]


def id_number(year: int, seq: str = "001") -> str:
    first17 = f"310101{year}0315{seq}"
    return first17 + id_check_char(first17)


REGISTER = BuildingIndex(
    [
        RegisteredBuilding("b12", "12", 18, 4),
        RegisteredBuilding("b3", "3号楼", 6, 2),
        RegisteredBuilding("b5-2", "5-2", 6, 2),
    ]
)


def test_a_chinese_sheet_is_checked_against_the_register() -> None:
    def row(**cells: str) -> dict[str | None, str | None]:
        return {"building": "12号楼", "room": "1502", "name": "王秀英", "id_number": id_number(1949)} | cells

    rows = [
        row(relationship="本人", regular_medication="是"),  # line 2
        row(name="李建国", id_number=id_number(1950, "013"), relationship="配偶"),  # 3: same flat
        row(building="3", room="602", name="张伟", id_number="", birth_year="1990-05-01"),  # 4
        row(building="5", unit="2", room="101", name="刘芳", id_number="", age="70"),  # 5: unit 2 of building 5
    ]
    present = {"building", "unit", "room", "name", "id_number", "birth_year", "age", "relationship",
               "regular_medication"}  # fmt: skip
    good, errors = validate_rows(rows, today=TODAY, buildings=REGISTER, present=present)
    assert errors == []
    assert [(g.building, g.floor, g.room, g.household, g.resident) for g in good] == [
        ("b12", 15, 2, "b12-1502", ""), ("b12", 15, 2, "b12-1502", ""), ("b3", 6, 2, "b3-602", ""),
        ("b5-2", 1, 1, "b5-2-101", "")]  # fmt: skip
    assert [g.representative for g in good] == [True, False, False, False]
    assert good[0].needs == Needs(regular_medication=True) and good[0].birth_year == 1949
    assert (good[2].birth_year, good[3].birth_year, good[3].birth_year_exact) == (1990, 1952, False)
    assert good[0].present == frozenset(present)

    bad = [
        row(building="99号楼"),  # 2: no such building
        row(room="1905"),  # 3: 12号楼 has 18 floors and 4 rooms a floor
        row(room="1505"),  # 4
        row(room="2"),  # 5: no floor
        row(phone="1380013800", id_number=id_number(1949)[:17] + "0"),  # 6: two cells
        row(id_number="", birth_year=""),  # 7: no birth year at all
        row(relationship="本人"),  # 8
        row(relationship="本人"),  # 9: a second head in 1502
    ]
    for line, cells in enumerate(bad, start=2):
        if cells["id_number"] == id_number(1949):
            cells["id_number"] = id_number(1949, f"{line:03d}")
    good, errors = validate_rows(bad, today=TODAY, buildings=REGISTER, present=present | {"phone"})
    assert good[0].line == 8 and len(good) == 1
    assert [(e.line, e.column, e.code) for e in errors] == [
        (2, "building", "building-unknown"),
        (3, "room", "floor-above-top"),
        (4, "room", "room-above-last"),
        (5, "room", "room-without-floor"),
        (6, "phone", "phone-invalid"),
        (6, "id_number", "id-number-check"),
        (7, "birth_year", "birth-year-required"),
        (9, "representative", "representative-repeated"),
    ]
    said = {(e.line, e.column): (e.reason, e.say_in("zh")) for e in errors}
    assert said[(3, "room")] == (
        "building 12 has floors 1-18; room 1905 is on floor 19",
        "12 号楼只有 1-18 层，1905 室在 19 层",
    )
    assert said[(4, "room")][1] == "12 号楼每层只有 01-04 室，1505 是第 05 室"
    assert said[(2, "building")] == (
        "building 99 is not registered: import the buildings first",
        "99 号楼尚未登记：请先导入楼栋",
    )
    assert said[(6, "id_number")][1] == "身份证号校验码不正确"


def test_every_code_is_worded_in_both_languages_and_the_request_picks_one() -> None:
    for code, (english, chinese) in _SAYINGS.items():
        assert english and chinese and english != chinese, code
    assert say("required", "zh", {"field": "name"}) == "姓名必须填写"
    assert say("import-rejected", "en", {"lines": 1}) == "1 row has errors; nothing was imported"
    assert RowError.of(2, "phone", "phone-invalid").say_in("zh") == "手机号应为以 1 开头的 11 位数字"
    headers = ("zh-CN", "zh", "zh-CN,zh;q=0.9,en;q=0.8", "en-US,en;q=0.9", None, "fr", "en;q=0.5,zh")
    assert [language_of(h) for h in headers] == ["zh", "zh", "zh", "en", "en", "en", "zh"]


def test_a_title_row_above_the_headings_is_passed_over() -> None:
    from services.residents.spreadsheets import read_sheet

    text = "阳光小区居民信息登记表,,,\n,,,\n楼号,房号,姓名,出生日期\n12,1502,张三,1949\n\n12,302,李四,1950\n"
    sheet = read_sheet(text.encode("gb18030"))
    assert sheet.headings == ["楼号", "房号", "姓名", "出生日期"]
    assert sheet.cells == [["12", "1502", "张三", "1949"], ["12", "302", "李四", "1950"]] and sheet.lines == [4, 6]
    assert read_sheet("姓名\n".encode()).headings == ["姓名"] and read_sheet("姓名\n".encode()).cells == []
