"""The committee's own spreadsheets over HTTP, on SQLite and PostgreSQL: a 25-building compound in Chinese
headings and the committee's flat numbers, the preview and mapping step, the template, old .xls files refused,
and bad rows reported line by line in Chinese. Nothing is written while any row is wrong."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import unquote

import httpx
import openpyxl
from sqlalchemy import func, select

from contracts import roles as r
from services.residents import importing, views
from services.residents.domain import id_check_char
from tests.conftest import both_databases
from tests.residents.test_import import GIVEN, SURNAMES, count, event_types, head

PROBLEM = "application/problem+json"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
FLOORS, ROOMS = 20, 4
BUILDINGS_HEADINGS = ["楼号", "层数", "每层户数", "电梯数", "电梯载客人数"]
RESIDENTS_HEADINGS = ["楼栋", "房号", "姓名", "性别", "手机号*", "身份证号（必填）", "出生日期", "与户主关系",
                      "长期服药", "行动不便", "备注"]  # fmt: skip
RELATIONS = ["本人", "配偶", "子女"]


def workbook(headings: list[str], rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "居民信息"
    sheet.append(headings)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def buildings_sheet(count: int = 25) -> bytes:
    return workbook(BUILDINGS_HEADINGS, [[f"{n}号楼", FLOORS, ROOMS, 2, 8] for n in range(1, count + 1)])


def flat_written(floor: int, room: int, number: int) -> str:
    """Flats as a committee writes them, in the three ways seen in real sheets."""
    return [f"{floor}{room:02d}", f"{floor}-{room:02d}", f"{floor}层{room:02d}室"][number % 3]


def compound_sheet(buildings: int = 25) -> tuple[list[list[object]], int]:
    """Residents of the whole compound, 2–3 a flat, as the committee types them (numbers as numbers)."""
    rows: list[list[object]] = []
    number = households = 0
    for b in range(1, buildings + 1):
        for floor in range(1, FLOORS + 1):
            for room in range(1, ROOMS + 1):
                households += 1
                for member in range(2 if (floor + room) % 2 else 3):
                    number += 1
                    year = 1935 + number % 5 * 20 if number % 5 else 1945
                    first17 = (
                        f"{310101 + number // 1000}{year}{number % 12 + 1:02d}{number % 28 + 1:02d}{number % 1000:03d}"
                    )
                    rows.append([
                        f"{b}号楼" if number % 2 else b,
                        flat_written(floor, room, number) if number % 4 else int(f"{floor}{room:02d}"),
                        SURNAMES[number % len(SURNAMES)] + GIVEN[number % len(GIVEN)],
                        "女" if number % 2 else "男",
                        int(f"1{3 + number % 6}{number:09d}"),
                        first17 + id_check_char(first17),
                        f"{year}-{number % 12 + 1:02d}-{number % 28 + 1:02d}",
                        RELATIONS[member],
                        "是" if number % 5 == 0 else "否",
                        "是" if number % 97 == 0 else "",
                        "独居" if number % 50 == 0 else None,
                    ])  # fmt: skip
    return rows, households


def post(residents, path: str, content: bytes, headers: dict[str, str], **data: str) -> httpx.Response:
    return residents.client.post(
        f"/compounds/c1/{path}",
        files={"file": ("居民信息.xlsx", content, importing.XLSX_MEDIA_TYPE)},
        data=data,
        headers=headers,
    )


def imported(residents, kind: str, content: bytes, headers: dict[str, str], **data: str) -> httpx.Response:
    return residents.client.post(
        "/compounds/c1/import",
        params={"kind": kind},
        files={"file": ("居民信息.xlsx", content, importing.XLSX_MEDIA_TYPE)},
        data=data,
        headers=headers,
    )


@both_databases
def test_a_compound_sheet_in_chinese_imports_and_re_imports_as_nothing(residents, request) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    built = imported(residents, "buildings", buildings_sheet(), staff | ZH)
    assert built.status_code == 200, built.text
    listed = residents.client.get("/compounds/c1/buildings", headers=staff).json()["buildings"]
    assert [(b["building"], b["number"]) for b in listed][:2] == [("b1", "1号楼"), ("b2", "2号楼")]
    rows, households = compound_sheet()
    assert len(rows) == 5000 and households == 2000
    content = workbook(RESIDENTS_HEADINGS, rows)

    started = time.perf_counter()
    first = imported(residents, "residents", content, staff | ZH)
    elapsed = time.perf_counter() - started
    assert first.status_code == 200, first.text[:2000]
    print(f"\nChinese sheet of 5,000 residents on {request.node.callspec.params['new_database']}: {elapsed:.2f} s")
    body = first.json()
    assert body["residents"] == {"created": 5000, "changed": 0, "unchanged": 0}
    assert body["households"] == {"created": 2000, "changed": 0, "unchanged": 0}
    assert body["changes"]["representative_chosen"] == 2000  # 与户主关系 = 本人
    assert event_types(residents) == {"BuildingRegistered": 25, "HouseholdRegistered": 2000,
                                      "ResidentRegistered": 5000, "RepresentativeChosen": 2000}  # fmt: skip
    flats = residents.client.get("/compounds/c1/buildings/b12/households", headers=staff).json()["households"]
    assert {(h["household"], h["floor"], h["room"]) for h in flats} >= {("b12-1502", 15, 2), ("b12-302", 3, 2)}
    with residents.runtime.database.reading() as session:
        medication = session.execute(
            select(func.count()).select_from(views.residents).where(views.residents.c.regular_medication.is_(True))
        ).scalar()
    assert medication == 1000
    revealed = residents.client.get("/compounds/c1/residents/b1-101-1", params={"reveal": True}, headers=staff)
    assert revealed.json()["name"] == rows[0][2] and revealed.json()["phone"] == str(rows[0][4])

    # The same sheet again: every resident found again by ID-card number, nothing recorded.
    position = head(residents)
    again = imported(residents, "residents", content, staff | ZH)
    assert again.status_code == 200, again.text[:2000]
    assert again.json()["residents"] == {"created": 0, "changed": 0, "unchanged": 5000}
    assert again.json()["events"] == 0 and head(residents) == position

    # A sheet of names and phones only: needs and ID-card numbers are left as registered, a new phone recorded.
    short = [[row[0], row[1], row[2], row[4]] for row in rows[:30]]
    short[0][3] = 13912345678
    slim = imported(residents, "residents", workbook(["楼号", "房号", "姓名", "手机号", "年龄"],
                                                     [[*row, 2022 - 1950] for row in short]), staff)  # fmt: skip
    assert slim.status_code == 422  # an age that is not the registered birth year, give or take one
    assert {e["code"] for e in slim.json()["errors"]} == {"birth-year-registered"}
    slim = imported(residents, "residents", workbook(["楼号", "房号", "姓名", "手机号"], short), staff)
    assert slim.status_code == 422 and slim.json()["missing"] == ["birth_year"]
    with_ids = [[*row, rows[i][5]] for i, row in enumerate(short)]
    by_id = imported(residents, "residents", workbook(["楼号", "房号", "姓名", "手机号", "身份证号"], with_ids), staff)
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["changes"] == {"moved": 0, "needs_changed": 0, "identity_corrected": 1,
                                       "representative_chosen": 0}  # fmt: skip
    assert count(residents, views.residents) == 5000


@both_databases
def test_preview_and_mapping_of_headings_it_does_not_know(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    assert imported(residents, "buildings", buildings_sheet(3), staff).status_code == 200
    headings = ["楼号", "房间", "居民", "微信号", "手机号码", "身份证号", "出生年月"]
    rows = [[1, 1502, "王秀英", "wx1", 13800138000, "31010119490315002X", "1949-03"],
            ["2号楼", "3-02", "李建国", "", "", "", "1950"]]  # fmt: skip
    content = workbook(headings, rows)
    position = head(residents)

    preview = post(residents, "imports/preview", content, staff | ZH)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert [(h["heading"], h["field"]) for h in body["headings"]] == [
        ("楼号", "building"), ("房间", "room"), ("居民", None), ("微信号", None), ("手机号码", "phone"),
        ("身份证号", "id_number"), ("出生年月", "birth_year")]  # fmt: skip
    assert body["missing"] == ["name"] and body["unknown"] == ["居民", "微信号"] and body["ready"] is False
    assert ["birth_year", "age", "id_number"] in body["required"] and "name" in body["fields"]
    assert body["rows"] == 2 and body["sample"][0]["line"] == 2
    assert body["sample"][0]["cells"] == ["1", "1502", "王秀英", "wx1", "138****8000", "310***********002X", "1949-03"]

    # Without a mapping the import says what is missing and which headings it did not know, in Chinese.
    refused = imported(residents, "residents", content, staff | ZH)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["type"] == "urn:juwei:problem:headings-missing"
    assert problem["missing"] == ["name"] and problem["unknown"] == ["居民", "微信号"]
    assert problem["detail"].startswith("表格缺少这些列：姓名；无法识别的标题：居民、微信号")
    assert head(residents) == position

    mapping = json.dumps({"居民": "name", "微信号": None}, ensure_ascii=False)
    mapped = post(residents, "imports/preview", content, staff, mapping=mapping).json()
    assert mapped["ready"] is True and mapped["missing"] == [] and mapped["unknown"] == []
    assert [h["chosen"] for h in mapped["headings"]][2:4] == [True, True]
    assert head(residents) == position  # a preview writes nothing

    done = imported(residents, "residents", content, staff | ZH, mapping=mapping)
    assert done.status_code == 200, done.text
    assert done.json()["residents"]["created"] == 2 and done.json()["households"]["created"] == 2
    flats = residents.client.get("/compounds/c1/buildings/b2/households", headers=staff).json()["households"]
    assert [(h["household"], h["floor"], h["room"]) for h in flats] == [("b2-302", 3, 2)]

    bad = imported(residents, "residents", content, staff | ZH, mapping=json.dumps({"居民": "nickname"}))
    assert bad.status_code == 422 and bad.json()["type"] == "urn:juwei:problem:bad-mapping"
    assert "nickname" in bad.json()["detail"] and "name" in bad.json()["fields"]
    garbled = post(residents, "imports/preview", content, staff, mapping="[1, 2]")
    assert garbled.status_code == 422 and garbled.json()["type"] == "urn:juwei:problem:bad-mapping"
    # A raw body takes its mapping as a query parameter.
    raw = residents.client.post("/compounds/c1/imports/preview", params={"mapping": mapping}, content=content,
                                headers=staff | {"content-type": importing.XLSX_MEDIA_TYPE})  # fmt: skip
    assert raw.status_code == 200 and raw.json()["ready"] is True


@both_databases
def test_the_template_downloads_and_imports_back(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    got = residents.client.get("/compounds/c1/imports/template", headers=staff)
    assert got.status_code == 200 and got.headers["content-type"] == importing.XLSX_MEDIA_TYPE
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="juwei-residents-template.xlsx"')
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "居民导入模板.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(got.content))
    first, notes = book.worksheets
    headings = [c.value for c in first[1]]
    assert headings[:4] == ["楼号", "单元", "房号", "姓名"] and "身份证号" in headings and "与户主关系" in headings
    example = dict(zip(headings, [c.value for c in first[2]], strict=True))
    assert example["房号"] == "1502" and example["姓名"] == "张三"
    explained = {row[0].value: (row[2].value, row[3].value) for row in notes.iter_rows(min_row=2) if row[0].value}
    assert "1502" in explained["房号"][0] and "floor 15" in explained["房号"][1]
    buildings = residents.client.get("/compounds/c1/imports/template", params={"kind": "buildings"}, headers=staff)
    assert [c.value for c in openpyxl.load_workbook(io.BytesIO(buildings.content)).worksheets[0][1]] == [
        "楼号", "层数", "每层户数", "电梯", "电梯载客"]  # fmt: skip

    # Filled in (here: its example row as it is), it imports.
    assert imported(residents, "buildings", buildings.content, staff).status_code == 200
    back = imported(residents, "residents", got.content, staff | ZH)
    assert back.status_code == 200, back.text
    assert back.json()["residents"]["created"] == 1 and back.json()["changes"]["representative_chosen"] == 1
    refused = residents.client.get("/compounds/c1/imports/template", headers=residents.key(r.LOGISTICS_VOLUNTEER))
    assert refused.status_code == 403


@both_databases
def test_old_xls_files_and_other_files_are_refused_in_the_requests_language(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    xls = bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 512
    for path in ("import?kind=residents", "imports/preview"):
        upload = {"file": ("名单.xls", xls, "application/vnd.ms-excel")}
        chinese = residents.client.post(f"/compounds/c1/{path}", files=upload, headers=staff | ZH)
        assert chinese.status_code == 415 and chinese.headers["content-type"] == PROBLEM
        assert chinese.json()["type"] == "urn:juwei:problem:xls-file"
        assert chinese.json()["detail"] == (
            "这是 Excel 97-2003 的 .xls 文件：请另存为 .xlsx（文件 > 另存为 > Excel 工作簿）后再导入"
        )
    english = residents.client.post("/compounds/c1/import", params={"kind": "residents"}, content=xls,
                                    headers=staff | {"content-type": "application/octet-stream"})  # fmt: skip
    assert english.status_code == 415 and english.json()["detail"].startswith("this is an Excel 97-2003 .xls file")
    pdf = post(residents, "imports/preview", b"%PDF-1.7\n...", staff | ZH)
    assert pdf.status_code == 415 and pdf.json()["type"] == "urn:juwei:problem:not-a-sheet"
    assert "PDF" in pdf.json()["detail"] and "请保存为 .xlsx 或 .csv" in pdf.json()["detail"]
    broken = post(residents, "imports/preview", b"PK\x03\x04 not a workbook", staff | ZH)
    assert broken.status_code == 422 and broken.json()["reason_code"] == "unreadable-xlsx"
    assert broken.json()["detail"].startswith("无法读取此 XLSX 工作簿")
    assert head(residents) == 0


@both_databases
def test_bad_rows_of_a_chinese_sheet_are_each_reported_in_chinese_and_nothing_is_written(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    assert imported(residents, "buildings", buildings_sheet(3), staff).status_code == 200
    rows, _ = compound_sheet(3)
    rows = rows[:200]
    rows[9][4] = 2380013800  # line 11: phone
    rows[49][0] = "9号楼"  # line 51: no such building
    rows[79][1] = "2101"  # line 81: above the top floor
    rows[99][1] = "1505"  # line 101: room 05 of 4
    rows[119][1] = "15"  # line 121: no floor
    rows[139][6] = "八五年"  # line 141: not a date
    rows[159][5] = rows[159][5][:17] + ("0" if rows[159][5][17] != "0" else "1")  # line 161: check digit
    rows[179][8] = "也许"  # line 181
    position = head(residents)
    refused = imported(residents, "residents", workbook(RESIDENTS_HEADINGS, rows), staff | ZH)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    body = refused.json()
    assert body["type"] == "urn:juwei:problem:import-rejected" and body["detail"] == "8 行有错误，未导入任何数据"
    assert body["error_count"] == 8
    assert [(e["line"], e["column"], e["heading"], e["code"]) for e in body["errors"]] == [
        (11, "phone", "手机号*", "phone-invalid"),
        (51, "building", "楼栋", "building-unknown"),
        (81, "room", "房号", "floor-above-top"),
        (101, "room", "房号", "room-above-last"),
        (121, "room", "房号", "room-without-floor"),
        (141, "birth_year", "出生日期", "birth-year-unreadable"),
        (161, "id_number", "身份证号（必填）", "id-number-check"),
        (181, "regular_medication", "长期服药", "flag-unreadable"),
    ]
    reasons = {e["line"]: e["reason"] for e in body["errors"]}
    assert reasons[11] == "手机号应为以 1 开头的 11 位数字"
    assert reasons[51] == "9 号楼尚未登记：请先导入楼栋"
    assert reasons[81] == "1号楼只有 1-20 层，2101 室在 21 层"
    assert reasons[101].endswith("1505 是第 05 室")
    assert "1502（15 层 02 室）" in reasons[121]
    assert reasons[181] == "请填写 是/否（或 1/0），而不是“也许”"
    english = imported(residents, "residents", workbook(RESIDENTS_HEADINGS, rows), staff)
    assert english.json()["errors"][0]["reason"] == "a mobile number has 11 digits and starts with 1"
    assert english.json()["detail"] == "8 rows have errors; nothing was imported"
    assert head(residents) == position and count(residents, views.residents) == 0
