"""The register's edges over HTTP: an old .xls shows residents' own refusal in the person's language, the
template is residents' file passed through, a form without its CSRF token is refused, a sheet's token is its
uploader's only."""

from __future__ import annotations

import io
from urllib.parse import unquote

import httpx
import pytest
from openpyxl import load_workbook

from tests.console.staff.conftest import StaffWorld

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]
XLS = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504  # an Excel 97-2003 (OLE2) file's first sector


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/register").text
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_an_xls_file_is_refused_with_residents_clear_message_in_chinese_and_in_english(
    staff_world: StaffWorld,
) -> None:
    for language, expected in (("zh-CN", "请另存为 .xlsx"), ("en", "save it as .xlsx")):
        with staff_world.signed_in(language) as client:
            answer = client.post(
                "/register/preview",
                data={"csrf": csrf_of(client), "kind": "residents"},
                files={"file": ("住户.xls", XLS, "application/vnd.ms-excel")},
            )
        assert answer.status_code == 415, answer.text[:500]
        assert expected in answer.text
        assert 'id="upload"' in answer.text  # the upload form again, to send the .xlsx


def test_the_template_is_residents_own_and_a_form_needs_its_token(staff_world: StaffWorld) -> None:
    with staff_world.signed_in() as client:
        template = client.get("/register/template?kind=residents")
        assert template.status_code == 200
        assert "居民导入模板.xlsx" in unquote(template.headers["content-disposition"])
        headings = next(load_workbook(io.BytesIO(template.content), read_only=True).active.iter_rows(values_only=True))
        assert "楼号" in headings and "姓名" in headings
        no_token = client.post(
            "/register/preview", data={"kind": "residents"}, files={"file": ("a.csv", b"x", "text/csv")}
        )
        assert no_token.status_code == 403
        stranger = client.post("/register/import", data={"csrf": csrf_of(client), "token": "not-a-sheet-of-yours"})
        assert stranger.status_code == 410
        assert "请重新上传" in stranger.text
