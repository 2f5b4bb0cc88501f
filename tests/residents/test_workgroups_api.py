"""Work groups of the compound, volunteers' availability and who fits a task, over HTTP, with role boundaries
and the problems of bad input (nothing half-written)."""

from __future__ import annotations

from sqlalchemy import func, select

from contracts import roles as r
from juwei.store import events_table
from tests.conftest import both_databases
from tests.residents.seed import register_buildings

PROBLEM = "application/problem+json"
C = "/compounds/c1"


def _events(residents) -> int:
    with residents.runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar_one())


def _enlist(residents, staff: dict, people: list[tuple[str, str, list[str]]]) -> None:
    for volunteer, building, skills in people:
        made = residents.client.post(
            f"{C}/volunteers", json={"volunteer": volunteer, "building": building, "skills": skills}, headers=staff
        )
        assert made.status_code == 201, made.text


@both_databases
def test_work_groups_availability_and_suggestions(residents) -> None:
    register_buildings(residents.runtime, "c1", 4)
    staff = residents.key(r.COMMITTEE_STAFF)
    client = residents.client
    _enlist(
        residents,
        staff,
        [("v1", "1", ["spreadsheets"]), ("v2", "2", ["Spreadsheets", "writing"]), ("v3", "3", ["publicity"])],
    )
    named = client.put(f"{C}/work-groups/data-entry", json={"name": "数据录入", "description": "表格"}, headers=staff)
    assert named.status_code == 200, named.text
    client.put(f"{C}/work-groups/publicity", json={"name": "宣传"}, headers=staff)
    joined = client.put(f"{C}/work-groups/data-entry/members/v3", headers=staff).json()
    assert joined == {"group": "data-entry", "volunteer": "v3", "member": True, "changed": True}
    assert client.put(f"{C}/work-groups/data-entry/members/v3", headers=staff).json()["changed"] is False
    week = {"slots": [{"days": ["mon", "tue"], "start": "08:00", "end": "12:00"}]}
    set_ = client.put(f"{C}/volunteers/v1/availability", json=week, headers=staff)
    assert set_.status_code == 200, set_.text
    assert set_.json()["availability"] == ["mon 08:00-12:00", "tue 08:00-12:00"] and set_.json()["changed"]
    client.put(
        f"{C}/volunteers/v2/availability",
        json={"slots": [{"days": ["周一"], "start": "10:00", "end": "12:00"}]},
        headers=staff,
    )
    client.put(
        f"{C}/volunteers/v3/availability",
        json={"slots": [{"days": ["mon"], "start": "08:00", "end": "12:00"}]},
        headers=staff,
    )
    groups = client.get(f"{C}/work-groups", headers=staff).json()["groups"]
    assert [(g["group"], g["name"], [m["volunteer"] for m in g["members"]]) for g in groups] == [
        ("data-entry", "数据录入", ["v3"]),
        ("publicity", "宣传", []),
    ]
    assert groups[0]["members"][0]["availability"] == ["mon 08:00-12:00"]
    task = {"skill": "spreadsheets", "group": "data-entry", "day": "mon", "start": "08:00", "end": "12:00"}
    found = client.get(f"{C}/volunteer-suggestions", params=task, headers=staff)
    assert found.status_code == 200, found.text
    ranked = found.json()["suggestions"]
    assert [(f["volunteer"], f["free_share"]) for f in ranked] == [("v1", 1.0), ("v3", 1.0), ("v2", 0.5)]
    assert ranked[1]["groups"] == ["data-entry"] and ranked[2]["skills"] == ["spreadsheets", "writing"]
    on_wednesday = client.get(f"{C}/volunteer-suggestions", params={**task, "day": "wed"}, headers=staff).json()
    assert on_wednesday["suggestions"] == []  # everyone said when they are free, nobody on Wednesday
    # A volunteer stood down is suggested no more and leaves every group.
    assert client.delete(f"{C}/volunteers/v3", headers=staff).status_code == 200
    again = client.get(f"{C}/volunteer-suggestions", params=task, headers=staff).json()["suggestions"]
    assert [f["volunteer"] for f in again] == ["v1", "v2"]
    assert client.get(f"{C}/work-groups", headers=staff).json()["groups"][0]["members"] == []
    left = client.delete(f"{C}/work-groups/publicity/members/v1", headers=staff)
    assert left.status_code == 409 and left.json()["type"] == "urn:juwei:problem:not-a-member"


@both_databases
def test_bad_input_gets_clear_problems_and_records_nothing(residents) -> None:
    register_buildings(residents.runtime, "c1", 3)
    staff = residents.key(r.COMMITTEE_STAFF)
    client = residents.client
    _enlist(residents, staff, [("v1", "1", ["writing"]), ("v2", "2", [])])
    client.put(f"{C}/work-groups/writing", json={"name": "文字"}, headers=staff)
    client.delete(f"{C}/volunteers/v2", headers=staff)
    before = _events(residents)
    zh = {**staff, "Accept-Language": "zh-CN"}

    def problem(method: str, url: str, **kwargs) -> tuple[int, str, str]:
        answer = client.request(method, url, headers=zh, **kwargs)
        assert answer.headers["content-type"] == PROBLEM, answer.text
        body = answer.json()
        return answer.status_code, body["type"].removeprefix("urn:juwei:problem:"), body["detail"]

    status, kind, detail = problem("PUT", f"{C}/work-groups/writing/members/v9")
    assert (status, kind) == (404, "volunteer-unknown") and "未登记" in detail
    assert problem("PUT", f"{C}/work-groups/writing/members/v2")[:2] == (409, "volunteer-stood-down")
    assert problem("PUT", f"{C}/work-groups/nothing/members/v1")[:2] == (404, "group-unknown")
    assert problem("PUT", f"{C}/work-groups/writing", json={"name": ""})[0] == 422
    bad_slots = [
        [{"days": ["mon"], "start": "08h00", "end": "12:00"}],
        [{"days": ["mon"], "start": "12:00", "end": "08:00"}],
        [{"days": ["funday"], "start": "08:00", "end": "12:00"}],
        [{"days": ["mon"], "start": "08:00", "end": "12:00"}, {"days": ["mon"], "start": "09:00", "end": "10:00"}],
    ]
    for slots in bad_slots:
        status, kind, detail = problem("PUT", f"{C}/volunteers/v1/availability", json={"slots": slots})
        assert (status, kind) == (422, "availability-invalid"), slots
        assert any("\u4e00" <= ch <= "\u9fff" for ch in detail), detail  # said in Chinese
    assert problem("PUT", f"{C}/volunteers/v1/availability", json={"slots": [{"days": [], "start": "08:00"}]})[0] == 422
    assert problem("PUT", f"{C}/volunteers/v9/availability", json={"slots": []})[:2] == (404, "volunteer-unknown")
    assert problem("GET", f"{C}/volunteer-suggestions")[:2] == (422, "task-invalid")
    assert problem("GET", f"{C}/volunteer-suggestions", params={"skill": "writing", "day": "mon"})[:2] == (
        422,
        "task-invalid",
    )
    assert problem("GET", f"{C}/volunteer-suggestions", params={"group": "nothing"})[:2] == (404, "group-unknown")
    assert _events(residents) == before  # nothing half-written


def test_role_and_scope_boundaries_of_work_groups(residents) -> None:
    register_buildings(residents.runtime, "c1", 3)
    staff = residents.key(r.COMMITTEE_STAFF)
    client = residents.client
    _enlist(residents, staff, [("v1", "1", ["writing"]), ("v2", "2", ["writing"])])
    client.put(f"{C}/work-groups/writing", json={"name": "文字"}, headers=staff)
    client.put(f"{C}/work-groups/writing/members/v1", headers=staff)
    client.put(f"{C}/work-groups/writing/members/v2", headers=staff)
    officer = residents.key(r.INFORMATION_OFFICER, buildings=["1"])
    logistics = residents.key(r.LOGISTICS_VOLUNTEER, buildings=["1"])
    staff_of_2 = residents.key(r.COMMITTEE_STAFF, buildings=["2"])
    elsewhere = residents.key(r.COMMITTEE_STAFF, compound="c2")
    week = {"slots": [{"days": ["sat"], "start": "09:00", "end": "17:00"}]}

    def status(method: str, url: str, headers: dict, **kwargs) -> int:
        return client.request(method, url, headers=headers, **kwargs).status_code

    assert status("PUT", f"{C}/work-groups/stats", officer, json={"name": "统计"}) == 403
    assert status("PUT", f"{C}/work-groups/writing/members/v1", logistics) == 403
    assert status("PUT", f"{C}/work-groups/writing", elsewhere, json={"name": "x"}) == 403
    assert status("PUT", f"{C}/volunteers/v1/availability", officer, json=week) == 200
    assert status("PUT", f"{C}/volunteers/v2/availability", officer, json=week) == 403  # not their building
    assert status("PUT", f"{C}/volunteers/v1/availability", logistics, json=week) == 403
    assert status("DELETE", f"{C}/work-groups/writing/members/v1", staff_of_2) == 403
    # A key of some buildings sees and is suggested the volunteers of those buildings only.
    seen = client.get(f"{C}/work-groups", headers=officer).json()["groups"][0]["members"]
    assert [m["volunteer"] for m in seen] == ["v1"]
    suggested = client.get(f"{C}/volunteer-suggestions", params={"skill": "writing"}, headers=staff_of_2).json()
    assert [f["volunteer"] for f in suggested["suggestions"]] == ["v2"]
    assert status("GET", f"{C}/volunteer-suggestions", logistics, params={"skill": "writing"}) == 403
