"""The register in a real headless Chromium: staff wang signs in, uploads a Chinese sheet whose rooms are
written the committee's way (1502) and whose room column has a heading residents does not know (户室), maps
it in the mapping step, sees the bad row's line and Chinese reason (nothing imported), fixes the sheet and
imports it; then downloads the not-yet-tested export in the browser and reads it back with openpyxl."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from tests.browser import DESKTOP, PHONE, Browser
from tests.console.staff.conftest import PASSWORD, StaffWorld
from tests.kernel.harness import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]
HEADINGS = ["楼号", "户室", "姓名", "手机号", "身份证号", "出生年份"]


def chinese_sheet(path: Path, bad_room: bool) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADINGS)
    sheet.append(["2号楼", "1502", "张秀英", "13812345678", "", 1951])
    sheet.append(["2号楼", "1502", "李建国", "13912345678", "", 1949])
    sheet.append(["2号楼", "1509" if bad_room else "1503", "王丽娟", "13712345678", "", 1985])  # line 4
    sheet.append(["2号楼", "1601", "赵子涵", "", "", 2019])
    book.save(path)
    return path


def upload(browser: Browser, path: Path) -> None:
    root = browser.call("DOM.getDocument")["root"]["nodeId"]
    node = browser.call("DOM.querySelector", nodeId=root, selector="#upload input[type=file]")["nodeId"]
    browser.call("DOM.setFileInputFiles", nodeId=node, files=[str(path)])
    browser.submit("#upload")


def households_of_building_2(world: StaffWorld) -> set[tuple[int, int]]:
    return {(h["floor"], h["room"]) for h in world.service("residents", "/buildings/2/households")["households"]}


def test_a_chinese_sheet_through_the_mapping_step_then_an_export_read_back(
    staff_world: StaffWorld, tmp_path: Path
) -> None:
    before = households_of_building_2(staff_world)
    url = staff_world.console_url
    with Browser(tmp_path / "chromium") as browser:
        try:
            browser.viewport(DESKTOP)
            # Chinese, as the language switch keeps it (headless Chromium's own Accept-Language is en-US).
            browser.open(f"{url}/language/zh_CN?next=/register", ready="!!document.querySelector('#signin')")
            assert browser.evaluate("document.documentElement.lang") == "zh-CN"
            browser.fill("input[name=username]", "wang")
            browser.fill("input[name=password]", PASSWORD)
            browser.submit("#signin")
            browser.wait("!!document.querySelector('#upload')", what="the register page")
            assert browser.evaluate("location.pathname") == "/register"
            assert browser.evaluate("document.querySelector('#template-residents').getAttribute('href')")

            # The mapping step: 户室 is unknown; the select is prefilled with the missing required field (room).
            upload(browser, chinese_sheet(tmp_path / "住户登记.xlsx", bad_room=True))
            browser.wait("!!document.querySelector('#mapping')", what="the mapping step")
            assert browser.evaluate("document.querySelector('tr[data-heading=\"户室\"] select').value") == "room"
            assert "房号" in browser.text("tr[data-heading='户室'] select option:checked")
            assert browser.text("tr[data-heading='楼号'] td").strip() == "楼栋"
            browser.evaluate("document.querySelector('tr[data-heading=\"户室\"] select').value = 'room'")
            browser.submit("#mapping")

            # Refused, all or nothing: line 4's room 09 is beyond the 4 rooms a floor of building 2 has.
            browser.wait("!!document.querySelector('#bad-rows')", what="the bad rows")
            lines = browser.evaluate(
                "Array.from(document.querySelectorAll('#bad-rows tbody tr')).map(r => r.dataset.line)"
            )
            assert lines == ["4"]
            reason = browser.text("#bad-rows tr[data-line='4'] .reason")
            assert any("\u4e00" <= ch <= "\u9fff" for ch in reason), reason
            assert households_of_building_2(staff_world) == before, "a refused sheet wrote something"

            browser.viewport(PHONE)  # the refusal is readable on a phone: nothing wider than 360 px
            assert browser.evaluate("document.documentElement.scrollWidth") <= 360
            browser.viewport(DESKTOP)

            # The sheet fixed, uploaded again, mapped, imported.
            upload(browser, chinese_sheet(tmp_path / "住户登记-改.xlsx", bad_room=False))
            browser.wait("!!document.querySelector('#mapping')", what="the mapping step again")
            browser.submit("#mapping")
            browser.wait("!!document.querySelector('#imported')", what="the import's outcome")
            assert "已导入 4 行" in browser.text("#imported")
            assert households_of_building_2(staff_world) == before | {(15, 2), (15, 3), (16, 1)}

            # An export downloaded by the browser (its session), opened back with openpyxl.
            wait_for(
                lambda: any(
                    b["building"] == "2" and b["residents"] == 24 + 4
                    for b in staff_world.service("testing", "/rounds/R1/counts")["buildings"]
                ),
                timeout=90,
                what="testing to hear of the imported residents",
            )
            browser.open(f"{url}/exports", ready="!!document.querySelector('#exports')")
            encoded = browser.call(
                "Runtime.evaluate",
                awaitPromise=True,
                returnByValue=True,
                expression="fetch('/exports/untested.xlsx').then(r => r.arrayBuffer()).then(b => {"
                " let s = ''; new Uint8Array(b).forEach(c => s += String.fromCharCode(c)); return btoa(s); })",
            )["result"]["value"]
        finally:
            shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
    rows = list(load_workbook(io.BytesIO(base64.b64decode(encoded)), read_only=True).active.iter_rows(values_only=True))
    assert rows[2] == ("楼栋", "楼层", "房号", "住户", "居民编号", "姓名", "情况", "上门采样")
    coverage = staff_world.service("testing", "/rounds/R1/coverage")
    expected = {
        (b["building"], f["floor"], h["household"], r)
        for b in coverage["buildings"]
        for f in b["floors"]
        for h in f["households"]
        for r in h["not_tested"]
    }
    assert {(r[0], r[1], r[3], r[4]) for r in rows[3:]} == expected
    assert {(r[1], r[2]) for r in rows[3:] if r[0] == "2" and r[1] >= 15} == {(15, 2), (15, 3), (16, 1)}
