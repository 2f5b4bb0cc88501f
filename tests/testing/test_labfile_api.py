"""A lab's result file over HTTP: its rows settle tubes as a plate's results would (pools cleared, re-tests asked
for, residents re-called, cases confirmed), all rows or none; the same file twice records nothing new; every
kind of bad file is refused with a problem naming what is wrong, and nothing is recorded."""

from __future__ import annotations

import io

from openpyxl import Workbook

from contracts import roles as r
from services.testing.domain.labfile import MAX_LAB_BYTES
from tests.conftest import both_databases
from tests.testing.conftest import Testing
from tests.testing.test_batches_api import _event_count, _events, _in_building, _ready, _upload

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _csv(
    rows: list[list[str]], headings: tuple[str, ...] = ("试管号", "检测结果", "检测时间", "板号", "孔位")
) -> bytes:
    return "\n".join(",".join(row) for row in [list(headings), *rows]).encode() + b"\n"


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _post(testing: Testing, content: bytes, media_type: str = "text/csv", **headers: str):
    return testing.client.post(
        "/compounds/c1/lab-files", headers={**testing.staff, "Content-Type": media_type, **headers}, content=content
    )


@both_databases
def test_a_lab_file_settles_tubes_as_a_plate_would_and_once(testing: Testing) -> None:
    compound = _ready(testing)
    people = _in_building(compound, "1")
    pools = {"P1": people[:10], "P2": people[10:20], "P3": people[20:25]}
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, pools, point="p1"))
    first = _csv(
        [
            ["P1", "阴性", "2022-04-12 18:30", "L1", "A1"],
            ["P2", "阳性(+)", "2022-04-12 18:31", "L1", "A2"],
            ["P3", "无效", "2022-04-12 18:32", "L1", "A3"],
        ]
    )
    answer = _post(testing, first)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rows"], body["recorded"], body["already_imported"], body["repeated"]) == (3, 3, False, [])
    assert body["results"] == {"negative": 1, "positive": 1, "invalid": 1}
    assert (body["retests"], body["recalled"], body["cases"], body["plates"]) == (["P2"], ["P3"], [], ["L1"])
    assert body["message"] == "已导入 3 行，记录 3 个结果"
    # The same rules as a plate: a positive pool's residents are asked for a re-test, an invalid one re-called.
    assert [e["residents"] for e in _events(testing, "RetestRequested")] == [[f"c1:{p}" for p in people[10:20]]]
    assert _events(testing, "ResidentsRecalled")[-1]["reason"] == "invalid pooled sample"
    counts = testing.ok("GET", "/rounds/r1/counts?building=1")["buildings"][0]
    assert (counts["negative"], counts["to_resample"], counts["awaiting_result"]) == (10, 15, 0)
    # The lab's time is the result's time (the compound's clock).
    assert testing.ok("GET", "/tubes/P1")["resulted_at"] == "2022-04-12T18:30:00+08:00"
    assert [e["file"] for e in _events(testing, "LabFileImported")] == [body["file"]]

    # The same file again: nothing new, and the answer says when it was imported.
    before = _event_count(testing)
    again = _post(testing, first).json()
    assert again["already_imported"] is True and again["recorded"] == 0 and again["file"] == body["file"]
    assert again["imported_at"] == body["imported_at"] and "这次未记录任何新内容" in again["message"]
    assert "nothing new was recorded" in again["message_en"]
    assert _event_count(testing) == before
    # Another file with the same results (English headings, other spellings): each tube is already recorded.
    english = _csv(
        [["P1", "N", "2022-04-12 18:30"], ["P2", "positive", "2022-04-12 18:31"]], ("tube", "result", "time")
    )
    other = _post(testing, english).json()
    assert (other["already_imported"], other["recorded"], other["repeated"]) == (False, 0, ["P1", "P2"])
    assert len(_events(testing, "LabFileImported")) == 2
    assert len(_events(testing, "TubeResulted")) == 3

    # Individual re-tests in an XLSX (a form's file part): a positive one confirms a case, as on a plate.
    singles = {f"S{n}": [person] for n, person in enumerate(people[10:20], start=1)}
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, singles, point="p1"))
    sheet = _xlsx(
        [["实验室核酸检测结果"], ["管号", "结果", "时间"]]
        + [[tube, "阳性" if tube == "S1" else "阴性", "2022-04-12 21:00"] for tube in singles]
    )
    uploaded = testing.client.post(
        "/compounds/c1/lab-files", headers=testing.staff, files={"file": ("结果.xlsx", sheet, XLSX)}
    )
    assert uploaded.status_code == 200, uploaded.text
    settled = uploaded.json()
    assert settled["filename"] == "结果.xlsx" and settled["recorded"] == 10
    assert [(c["tube"], c["resident"]) for c in settled["cases"]] == [("S1", people[10])]
    case = settled["cases"][0]["case"]
    assert [e["resident"] for e in _events(testing, "CaseConfirmed")] == [f"c1:{people[10]}"]
    assert testing.ok("GET", f"/cases/{case}")["confirmed_on"] == "2022-04-12"
    counts = testing.ok("GET", "/rounds/r1/counts?building=1")["buildings"][0]
    assert (counts["negative"], counts["positive"]) == (19, 1)


@both_databases
def test_a_file_with_bad_rows_lists_every_one_and_records_nothing(testing: Testing) -> None:
    compound = _ready(testing)
    people = _in_building(compound, "1")
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, {"P1": people[:10], "P2": people[10:20]}, point="p1"))
    testing.ok("POST", "/plates/L0/results", json={"results": [{"tube": "P1", "result": "negative"}]})
    before = _event_count(testing)
    bad = _csv(
        [
            ["P2", "阴性", "2022-04-12 18:30", "L1", "A1"],  # 2: fine on its own
            ["NOPE", "阴性", "2022-04-12 18:30", "L1", "A2"],  # 3: no such tube
            ["P1", "阳性", "2022-04-12 18:30", "L1", "A3"],  # 4: P1 is already negative
            ["P2", "阴性", "2022-04-12 18:30", "L1", "A4"],  # 5: P2 twice
            ["P3", "阴性", "2099-04-12 18:30", "L1", "A5"],  # 6: in the future
            ["P4", "weakly", "2022-04-12 18:30", "L1", "A5"],  # 7: result unknown, A5 twice
        ]
    )
    answer = _post(testing, bad, **{"Accept-Language": "zh-CN"})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", answer.text
    problem = answer.json()
    assert problem["type"] == "urn:juwei:problem:lab-file-refused" and (problem["rows"], problem["count"]) == (5, 6)
    assert problem["detail"] == "文件中 5 行有错误（共 6 处），未记录任何结果；请改正后重新上传整个文件"
    assert [(e["row"], e["column"], e["type"]) for e in problem["errors"]] == [
        (3, "tube", "tube-unknown"),
        (4, "result", "tube-resulted"),
        (5, "tube", "tube-twice"),
        (6, "time", "time-in-future"),
        (7, "result", "result-unknown"),
        (7, "well", "well-twice"),
    ]
    conflict = problem["errors"][1]
    assert conflict["heading"] == "检测结果" and conflict["tube"] == "P1"
    assert conflict["message"] == "试管 P1 已记录结果（阴性），与文件中的“阳性”不一致：未作更改"
    assert conflict["message_en"] == "tube P1 already has its result (negative), not positive: nothing was changed"
    assert _event_count(testing) == before  # all or nothing: P2 was not recorded either
    assert testing.ok("GET", "/tubes/P2")["result"] is None
    english = _post(testing, bad).json()
    assert english["detail"].startswith("5 rows have errors (6 in all); nothing was recorded")

    def refused(content: bytes, media_type: str = "text/csv", **headers: str) -> tuple[int, str, dict]:
        answer = _post(testing, content, media_type, **headers)
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        return answer.status_code, answer.json()["code"], answer.json()

    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512
    assert refused(ole2, "application/vnd.ms-excel")[:2] == (415, "xls-file")
    status, code, said = refused(ole2, "application/vnd.ms-excel", **{"Accept-Language": "zh"})
    assert "另存为" in said["detail"]
    assert refused(b"%PDF-1.7\n...")[:2] == (415, "not-a-sheet")
    assert refused(b"")[:2] == (422, "no-file")
    assert refused(b" \n \n")[:2] == (422, "empty-file")
    assert refused(_csv([]))[:2] == (422, "no-rows")
    assert refused(b"PK\x03\x04broken", XLSX)[:2] == (422, "unreadable-xlsx")
    status, code, said = refused(_csv([["P2", "阴性"]], ("试管号", "结果")), **{"Accept-Language": "zh"})
    assert (status, code, said["missing"]) == (422, "headings-missing", "time") and "缺少以下列：时间" in said["detail"]
    status, code, said = refused(b"x" * (MAX_LAB_BYTES + 1))
    assert (status, code) == (413, "file-too-large")
    many = _csv([[f"X{n}", "阴性", "2022-04-12 18:30", "", ""] for n in range(10_001)])
    assert refused(many)[:2] == (422, "too-many-rows")
    assert _event_count(testing) == before

    # Who may: staff of the compound; a key limited to buildings, for tubes of their residents only.
    good = _csv([["P2", "阴性", "2022-04-12 18:30", "L1", "A1"]])
    volunteer = testing.point_key("p1")
    assert testing.status("POST", "/lab-files", volunteer, content=good) == 403
    assert testing.status("POST", "/lab-files", {}, content=good) == 401
    assert testing.status("POST", "/lab-files", testing.key(r.COMMITTEE_STAFF, compound="c2"), content=good) == 403
    elsewhere = testing.key(r.COMMITTEE_STAFF, buildings=["2"])
    assert testing.problem("POST", "/lab-files", elsewhere, content=good) == (403, "forbidden")
    assert _event_count(testing) == before
    assert (
        testing.ok("POST", "/lab-files", testing.key(r.COMMITTEE_STAFF, buildings=["1"]), content=good)["recorded"] == 1
    )
