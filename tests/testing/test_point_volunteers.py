"""Sampling-point volunteers are checked against the volunteers residents registered for the point's buildings
(testing knows them from residents' events): an unknown one, one stood down or one from another building gets a
clear problem in Chinese, and nothing is recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from contracts.residents import VolunteerEnlisted, VolunteerStoodDown
from juwei.aggregate import Conflict, NotFound
from juwei.store import events_table
from services.testing.domain import check_point_volunteers
from tests.conftest import both_databases
from tests.testing.conftest import Testing, receive, small_compound


def _events(testing: Testing) -> int:
    with testing.runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar_one())


def test_the_rule_without_io() -> None:
    enlisted = {"c1:v1": ("c1:1", True), "c1:v2": ("c1:2", True), "c1:v3": ("c1:1", False)}
    check_point_volunteers(["c1:v1", "c1:v2"], enlisted=enlisted, served=set())  # a point serving nothing yet
    check_point_volunteers(["c1:v1"], enlisted=enlisted, served={"c1:1"})
    with pytest.raises(NotFound) as unknown:
        check_point_volunteers(["c1:v9"], enlisted=enlisted, served={"c1:1"})
    assert unknown.value.code == "volunteer-unknown" and "v9 未在本小区登记" in str(unknown.value)
    with pytest.raises(Conflict) as retired:
        check_point_volunteers(["c1:v3"], enlisted=enlisted, served={"c1:1"})
    assert retired.value.code == "volunteer-not-serving"
    with pytest.raises(Conflict) as outside:
        check_point_volunteers(["c1:v1", "c1:v2"], enlisted=enlisted, served={"c1:1", "c1:3"})
    assert outside.value.code == "volunteer-outside-point"
    assert "v2 登记在 2 号楼" in str(outside.value) and "（1、3）" in str(outside.value)


@both_databases
def test_point_volunteers_are_checked_against_residents_volunteers(testing: Testing) -> None:
    compound = small_compound(buildings=3, residents=60)
    compound.publish("volunteer-c1:v1", VolunteerEnlisted(volunteer="c1:v1", building="c1:1", skills=[]))
    compound.publish("volunteer-c1:v2", VolunteerEnlisted(volunteer="c1:v2", building="c1:2", skills=[]))
    compound.publish("volunteer-c1:v3", VolunteerEnlisted(volunteer="c1:v3", building="c1:1", skills=[]))
    compound.publish("volunteer-c1:v3", VolunteerStoodDown(volunteer="c1:v3", building="c1:1"))
    receive(testing.runtime, compound.envelopes)
    zh = {**testing.staff, "Accept-Language": "zh-CN"}
    point = {"point": "p1", "name": "东门", "location": "east gate", "throughput": 3}
    before = _events(testing)
    stranger = testing.client.post("/compounds/c1/points", json={**point, "volunteers": ["v9"]}, headers=zh)
    assert stranger.status_code == 404 and stranger.json()["type"] == "urn:juwei:problem:volunteer-unknown"
    assert "未在本小区登记" in stranger.json()["detail"]
    assert _events(testing) == before and testing.ok("GET", "/points")["points"] == []  # nothing half-written
    testing.ok("POST", "/points", json={**point, "volunteers": ["v1"]})  # serves no building yet: any serving one
    testing.ok("PUT", "/points/p1/buildings", json={"buildings": ["1"]})
    before = _events(testing)
    assert testing.problem("PATCH", "/points/p1", json={"volunteers": ["v1", "v2"]}) == (409, "volunteer-outside-point")
    assert testing.problem("PATCH", "/points/p1", json={"volunteers": ["v3"]}) == (409, "volunteer-not-serving")
    assert testing.problem("PATCH", "/points/p1", json={"throughput": 4, "volunteers": ["v9"]}) == (
        404,
        "volunteer-unknown",
    )
    assert _events(testing) == before
    listed = testing.ok("GET", "/points")["points"][0]
    assert listed["volunteers"] == ["v1"] and listed["throughput"] == 3
    testing.ok("PUT", "/points/p1/buildings", json={"buildings": ["1", "2"]})
    assert testing.ok("PATCH", "/points/p1", json={"volunteers": ["v1", "v2"]})["volunteers"] == ["v1", "v2"]
    assert testing.ok("PATCH", "/points/p1", json={"throughput": 5})["volunteers"] == ["v1", "v2"]
