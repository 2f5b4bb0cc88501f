"""Each export over HTTP from the console as a process, against the real services: the .xlsx opened with
openpyxl holds exactly what the service answered, under Chinese headings (English when the person reads
English), named with the compound and the day; a logistics volunteer is refused the staff pages."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from openpyxl import load_workbook

from console.workbooks import XLSX_MEDIA_TYPE
from tests.console.staff.conftest import FOLLOW_UP, SAMPLED, TODAY, StaffWorld

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


def sheet(answer: httpx.Response) -> tuple[list[Any], list[list[Any]]]:
    """The headings and data rows of an export (row 1: the title; a note may follow; then the headings)."""
    assert answer.status_code == 200, answer.text[:2000]
    assert answer.headers["content-type"] == XLSX_MEDIA_TYPE
    rows = [
        list(r) for r in load_workbook(io.BytesIO(answer.content), read_only=True).active.iter_rows(values_only=True)
    ]
    start = 3 if len([cell for cell in rows[1] if cell is not None]) == 1 else 2  # a note is one cell
    return rows[start - 1], rows[start:]


def filename(answer: httpx.Response) -> str:
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    return unquote(disposition.split("filename*=UTF-8''", 1)[1])


def test_not_yet_tested_lists_every_resident_the_round_has_not_sampled(staff_world: StaffWorld) -> None:
    with staff_world.signed_in() as client:
        answer = client.get("/exports/untested.xlsx")
    headings, rows = sheet(answer)
    assert headings == ["楼栋", "楼层", "房号", "住户", "居民编号", "姓名", "情况", "上门采样"]
    assert filename(answer) == f"未检测-{staff_world.compound}-{TODAY}.xlsx"
    coverage = staff_world.service("testing", "/rounds/R1/coverage")
    expected = {
        (b["building"], f["floor"], h["household"], r)
        for b in coverage["buildings"]
        for f in b["floors"]
        for h in f["households"]
        for r in h["not_tested"]
    }
    assert {(r[0], r[1], r[3], r[4]) for r in rows} == expected
    assert not {r[4] for r in rows} & set(SAMPLED)
    assert {r[6] for r in rows} == {"未检测"}
    # Names as residents masks them for a staff key that did not ask to reveal: never in clear.
    households = staff_world.service("residents", "/buildings/1/households")
    masked = {m["resident"]: m.get("name") for h in households["households"] for m in h["members"]}
    for row in rows:
        if row[0] == "1":
            assert row[5] == masked[row[4]]
            assert row[2] is not None  # the room, from residents
    assert all("*" in str(row[5]) for row in rows if row[5]), "a name in clear"


def test_undelivered_households_are_supplies_follow_ups(staff_world: StaffWorld) -> None:
    with staff_world.signed_in() as client:
        answer = client.get("/exports/undelivered.xlsx")
    headings, rows = sheet(answer)
    assert headings == ["批次", "楼栋", "楼层", "房号", "住户", "未送达原因", "尝试次数", "物资"]
    follow_ups = staff_world.service("supplies", "/follow-ups")["follow_ups"]
    assert [(r[0], r[1], r[4], r[6]) for r in rows] == [
        (f["batch"], f["building"], f["household"], f["attempts"]) for f in follow_ups
    ]
    assert [r[4] for r in rows] == [FOLLOW_UP]
    assert rows[0][5] == "无人应答"


def test_card_custody_and_the_donation_ledger(staff_world: StaffWorld) -> None:
    with staff_world.signed_in() as client:
        cards_answer = client.get("/exports/cards.xlsx")
        ledger_answer = client.get("/exports/ledger.xlsx")
    headings, rows = sheet(cards_answer)
    assert headings[:3] == ["医保卡", "楼栋", "住户"]
    cards = staff_world.service("supplies", "/cards")["cards"]
    assert [(r[0], r[1], r[2]) for r in rows] == [(c["card"], c["building"], c["household"]) for c in cards]
    headings, rows = sheet(ledger_answer)
    assert headings[:4] == ["捐赠编号", "捐赠方", "接收日期", "物品"]
    ledger = staff_world.service("supplies", "/ledger")
    given = {(g["donation"], i["item"], i["quantity"]) for part in ("accepted", "refused") for g in ledger[part]
             for i in g["items"]}  # fmt: skip
    assert {(r[0], r[3], r[5]) for r in rows} == given
    refused = next(r for r in rows if r[0] == "d2")
    assert refused[7] == "否" and refused[11] == "不是必需物资"


def test_the_days_figures_per_building_in_chinese_and_in_english(staff_world: StaffWorld) -> None:
    with staff_world.signed_in() as client:
        chinese = client.get("/exports/figures.xlsx")
    with staff_world.signed_in("en") as client:
        english = client.get("/exports/figures.xlsx")
        english_untested = client.get("/exports/untested.xlsx")
    headings, rows = sheet(chinese)
    assert headings[:4] == ["楼栋", "管控区", "剩余天数", "居民"]
    counts = {b["building"]: b for b in staff_world.service("testing", "/rounds/R1/counts")["buildings"]}
    by_building = {r[0]: r for r in rows}
    assert set(by_building) == {"1", "2", "全部楼栋"}
    for building, entry in counts.items():
        assert by_building[building][3] == entry["residents"]
        assert by_building[building][5] == entry["tested"]
    assert by_building["1"][8] == 1  # the follow-up
    assert by_building["全部楼栋"][3] == sum(e["residents"] for e in counts.values())
    headings, rows = sheet(english)
    assert headings[:4] == ["Building", "Zone", "Days left", "Residents"]
    assert filename(english).startswith("The day's figures-")
    headings, rows = sheet(english_untested)
    assert headings == ["Building", "Floor", "Room", "Household", "Resident", "Name", "Status", "Sampled at home"]
    assert {r[6] for r in rows} == {"Not tested"}


def test_the_exports_page_lists_them_and_a_logistics_volunteer_is_refused_the_staff_pages(
    staff_world: StaffWorld,
) -> None:
    with staff_world.signed_in() as client:
        page = client.get("/exports")
        assert page.status_code == 200
        for name in ("untested", "undelivered", "cards", "ledger", "figures"):
            assert f'data-export="{name}"' in page.text
        assert "导出" in page.text and "未检测" in page.text
        assert client.get("/exports/nothing.xlsx").status_code == 404
    volunteer = httpx.Client(
        base_url=staff_world.console_url, cookies={"console_session": staff_world.logistics_cookie}
    )
    with volunteer:
        for path in ("/exports", "/exports/untested.xlsx", "/exports/cards.xlsx", "/register", "/overview"):
            answer = volunteer.get(path, follow_redirects=False)
            assert answer.status_code == 403, (path, answer.status_code)
            assert "您的角色不能访问此页面" in answer.text
        refused = volunteer.post(
            "/register/preview", files={"file": ("a.csv", b"x", "text/csv")}, data={"kind": "residents"}
        )
        assert refused.status_code == 403
