"""The weekly medicine survey: the elderly and regular-medication residents an information officer has not yet
asked this week, and the "asked" they record; the rules as plain Python, then over HTTP on both databases."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from contracts import roles as r
from juwei.aggregate import Invalid
from juwei.audit import sensitive_reads_table
from juwei.store import events_table
from services.residents import retention
from services.residents.domain.survey import MedicineSurvey, iso_week, survey_id
from services.residents.rosters import medicine_asked
from tests.conftest import both_databases
from tests.residents.test_register_api import resident_body, seed

TODAY = date(2022, 4, 10)  # a Sunday: the last day of ISO week 14


def test_a_resident_is_asked_once_a_week_on_a_day_of_that_week() -> None:
    assert iso_week(TODAY) == "2022-W14" and iso_week(date(2022, 4, 11)) == "2022-W15"
    survey = MedicineSurvey(survey_id("c1:b1", "2022-W14"))
    assert survey.building == "c1:b1" and survey.week == "2022-W14"
    assert survey.ask("c1:r1", "c1:h1", TODAY, today=TODAY) is True
    assert survey.ask("c1:r1", "c1:h1", date(2022, 4, 5), today=TODAY) is False  # once a week is enough
    for wrong in (date(2022, 4, 11), date(2022, 4, 1), date(2022, 4, 3)):  # future, too old, week 13
        with pytest.raises(Invalid) as refused:
            survey.ask("c1:r2", "c1:h1", wrong, today=TODAY)
        assert refused.value.code == "asked-on-invalid"
    assert [(e.resident, e.week, e.building) for e in survey.pending()] == [("c1:r1", "2022-W14", "c1:b1")]


def _count(residents, table) -> int:
    with residents.runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


@both_databases
def test_an_officer_lists_whom_to_ask_and_records_asking(residents) -> None:
    staff = seed(residents)  # b1: h1 (r1 elderly with regular medication, r2), h2 (r3 an infant); b2: h3
    client = residents.client
    more = [
        ("h2", resident_body("r4", id_number=None, birth_year=1985, regular_medication=True)),
        ("h2", resident_body("r5", id_number=None, birth_year=1945)),
        ("h3", resident_body("r6", id_number=None, birth_year=1940)),
    ]
    for household, body in more:
        made = client.post(f"/compounds/c1/households/{household}/residents", json=body, headers=staff)
        assert made.status_code == 201, made.text
    officer = residents.key(r.INFORMATION_OFFICER, buildings=["b1"])
    reads_before = _count(residents, sensitive_reads_table)
    listed = client.get("/compounds/c1/buildings/b1/medicine-survey", headers=officer)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["building"], body["week"], body["asked"]) == ("b1", "2022-W14", 0)
    assert [(p["resident"], p["floor"], p["elderly"], p["regular_medication"]) for p in body["not_asked"]] == [
        ("r1", 3, True, True),
        ("r4", 5, False, True),
        ("r5", 5, True, False),
    ]
    assert "name" not in listed.text and "phone" not in listed.text
    assert _count(residents, sensitive_reads_table) == reads_before + 3  # one health read per person shown
    asked = client.post("/compounds/c1/residents/r1/medicine-asked", json={}, headers=officer)
    assert asked.status_code == 200, asked.text
    assert asked.json() == {"resident": "r1", "building": "b1", "week": "2022-W14", "asked_on": "2022-04-10",
                            "recorded": True}  # fmt: skip
    events = _count(residents, events_table)
    with residents.runtime.database.reading() as session:
        data, private = session.execute(
            select(events_table.c.data, events_table.c.private).where(events_table.c.type.like("%MedicineAsked%"))
        ).one()
    assert "resident" not in data and "household" not in data and "c1:r1" in private  # whom: never published
    again = client.post("/compounds/c1/residents/r1/medicine-asked", json={"asked_on": "2022-04-08"}, headers=officer)
    assert again.json()["recorded"] is False and _count(residents, events_table) == events
    client.post("/compounds/c1/residents/r5/medicine-asked", json={"asked_on": "2022-04-04"}, headers=officer)
    body = client.get("/compounds/c1/buildings/b1/medicine-survey", headers=officer).json()
    assert [p["resident"] for p in body["not_asked"]] == ["r4"] and body["asked"] == 2
    # Last week's asking is last week's: r4 asked on 3 April (week 13) is still to ask this week.
    client.post("/compounds/c1/residents/r4/medicine-asked", json={"asked_on": "2022-04-03"}, headers=officer)
    body = client.get("/compounds/c1/buildings/b1/medicine-survey", headers=officer).json()
    assert [p["resident"] for p in body["not_asked"]] == ["r4"]
    # Retention (the lockdown over) removes whom the survey asked, with the health flags.
    with residents.runtime.database.unit_of_work() as session:
        report = retention.scrub(residents.runtime, session, "c1")
    assert report["medicine_asked_removed"] == 3 and _count(residents, medicine_asked) == 0


def test_bad_input_and_scopes_of_the_medicine_survey(residents) -> None:
    staff = seed(residents)
    client = residents.client
    made = client.post(
        "/compounds/c1/households/h3/residents",
        json=resident_body("r6", id_number=None, birth_year=1940),
        headers=staff,
    )
    assert made.status_code == 201, made.text
    officer = residents.key(r.INFORMATION_OFFICER, buildings=["b1"])
    logistics = residents.key(r.LOGISTICS_VOLUNTEER, buildings=["b1"])
    zh = {**officer, "Accept-Language": "zh-CN"}
    events = _count(residents, events_table)

    def problem(method: str, url: str, headers: dict, **kwargs) -> tuple[int, str]:
        answer = client.request(method, url, headers=headers, **kwargs)
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        return answer.status_code, answer.json()["type"].removeprefix("urn:juwei:problem:")

    assert problem("GET", "/compounds/c1/buildings/b2/medicine-survey", officer)[0] == 403
    assert problem("POST", "/compounds/c1/residents/r6/medicine-asked", officer, json={})[0] == 403
    assert problem("GET", "/compounds/c1/buildings/b1/medicine-survey", logistics)[0] == 403
    assert problem("POST", "/compounds/c1/residents/r1/medicine-asked", logistics, json={})[0] == 403
    assert problem("GET", "/compounds/c1/buildings/b9/medicine-survey", staff) == (404, "building-unknown")
    unknown = client.post("/compounds/c1/residents/r99/medicine-asked", json={}, headers=zh)
    assert unknown.status_code == 404 and "不在登记册中" in unknown.json()["detail"]
    future = client.post("/compounds/c1/residents/r1/medicine-asked", json={"asked_on": "2022-04-11"}, headers=zh)
    assert future.status_code == 422 and "晚于今天" in future.json()["detail"]
    assert problem("POST", "/compounds/c1/residents/r1/medicine-asked", officer, json={"asked_on": "soon"})[0] == 422
    assert problem("POST", "/compounds/c1/residents/r1/medicine-asked", officer, json={"by": "me"})[0] == 422
    assert _count(residents, events_table) == events  # nothing half-written
