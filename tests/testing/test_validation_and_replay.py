"""Bad input is a 422 problem (never a 500); the read models rebuild to the same rows; the migration matches
the views; what leaves through the feed is CloudEvents with ids and results, never identity."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from contracts import roles as r
from juwei.callers import Grant
from services.testing.views import projections, tables
from tests.conftest import both_databases
from tests.testing.conftest import PROBLEM, Testing, open_points, receive, small_compound

POINT = {"point": "p9", "name": "Point 9", "location": "gate", "throughput": 3}
ROUND = {"round": "r9", "starts_at": "2022-04-12T07:00", "points": ["p1"]}
BAD: list[tuple[str, str, Any]] = [
    ("POST", "/points", {**POINT, "throughput": "fast"}),
    ("POST", "/points", {**POINT, "throughput": -1}),
    ("POST", "/points", {**POINT, "throughput": 101}),
    ("POST", "/points", {**POINT, "point": "a b"}),
    ("POST", "/points", {**POINT, "colour": "red"}),
    ("POST", "/points", {k: v for k, v in POINT.items() if k != "name"}),
    ("POST", "/points", {**POINT, "volunteers": "v1"}),
    ("POST", "/points", [POINT]),
    ("PATCH", "/points/p1", {"throughput": None, "volunteers": [""]}),
    ("PUT", "/points/p1/buildings", {"buildings": "1"}),
    ("POST", "/rounds", {**ROUND, "starts_at": "tomorrow morning"}),
    ("POST", "/rounds", {**ROUND, "mode": "crowd"}),
    ("POST", "/rounds", {**ROUND, "pool_size": 0}),
    ("POST", "/rounds", {**ROUND, "pool_size": 21}),
    ("POST", "/rounds", {**ROUND, "kind": "flu"}),
    ("POST", "/rounds", {**ROUND, "round": "x" * 41}),
    ("POST", "/rounds", {**ROUND, "window_minutes": 0}),
    ("POST", "/rounds", {**ROUND, "floor_order": "sideways"}),
    ("POST", "/rounds/r1/samples", {"tube": "T1", "residents": [], "point": "p1"}),
    ("POST", "/rounds/r1/samples", {"tube": "T1", "residents": [f"r{n}" for n in range(21)], "point": "p1"}),
    ("POST", "/rounds/r1/samples", {"tube": "T 1", "residents": ["r1"], "point": "p1"}),
    ("POST", "/tubes/T1/result", {"result": "maybe"}),
    ("POST", "/tubes/T1/result", {}),
    ("POST", "/rounds/r1/residents/r1/result", {"result": 1}),
    ("POST", "/cases/case-1/transfer", {"scheduled_at": "soon"}),
    ("POST", "/cases/case-1/close", {"outcome": "recovered", "closed_at": "later"}),
    ("POST", "/cases/case-1/transferred", {"facility": "x" * 201}),
    ("GET", "/rounds/r1/coverage?building=a%20b", None),
    ("GET", "/rounds/r1/plan?building=" + "9" * 41, None),
    ("GET", "/cases?status=lost", None),
    ("POST", "/rounds/bad%20id/plan", None),
]


def test_bad_input_is_a_422_problem_never_a_500(testing: Testing) -> None:
    receive(testing.runtime, small_compound(buildings=1, residents=20).envelopes)
    open_points(testing, 1)
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1"]})
    for method, url, body in BAD:
        answer = testing.client.request(method, f"/compounds/c1{url}", headers=testing.staff, json=body)
        assert answer.status_code == 422, (method, url, body, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        problem = answer.json()
        assert problem["status"] == 422 and problem["detail"] and problem["instance"].startswith("/compounds/c1")
    not_json = testing.client.post(
        "/compounds/c1/points", headers={**testing.staff, "content-type": "application/json"}, content=b"{not json"
    )
    assert not_json.status_code == 422 and not_json.headers["content-type"] == PROBLEM
    bad_compound = testing.client.get("/compounds/C1!/points", headers=testing.staff)
    assert bad_compound.status_code == 422
    multipart_as_json = testing.client.post(
        "/compounds/c1/buildings/1/disinfections", headers=testing.staff, json={"areas": ["lobby"]}
    )
    assert multipart_as_json.status_code == 422 and multipart_as_json.headers["content-type"] == PROBLEM


def _snapshot(testing: Testing) -> dict[str, list[tuple]]:
    with testing.runtime.database.reading() as session:
        return {
            table.name: sorted(tuple(str(v) for v in row) for row in session.execute(select(table)))
            for projection in projections()
            for table in projection.tables
        }


@both_databases
def test_the_read_models_rebuild_to_the_same_rows(testing: Testing) -> None:
    compound = small_compound(buildings=2, residents=60, bedridden_share=0.05)
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 2)
    testing.ok("POST", "/assignment/proposal")
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"]})
    testing.ok("POST", "/rounds/r1/plan")
    volunteer = testing.point_key("p1")
    testing.ok("POST", "/rounds/r1/points/p1/calls/next", headers=volunteer)
    people = list(compound.residents)
    testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T1", "residents": people[:10]})
    testing.ok("POST", "/tubes/T1/result", json={"result": "positive"})
    testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "S1", "residents": people[:1]})
    case = testing.ok("POST", "/tubes/S1/result", json={"result": "positive"})["case"]
    testing.ok("POST", f"/cases/{case}/transfer", json={"scheduled_at": "2022-04-12T14:00"})
    before = _snapshot(testing)
    assert all(before[name] for name in ("tst_residents", "tst_calls", "tst_round_residents", "tst_cases"))
    replayed = testing.runtime.projector.rebuild()
    assert replayed >= len(compound.envelopes)
    assert _snapshot(testing) == before


@both_databases
def test_the_migration_creates_exactly_the_tables_the_views_declare(testing: Testing) -> None:
    def ours(item: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        table = item if kind == "table" else getattr(item, "table", None)
        return table is not None and table.name.startswith("tst_")  # the kernel's tables are not ours

    with testing.runtime.database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": ours})
        differences = compare_metadata(context, tables)
    assert differences == []


def test_the_feed_carries_ids_and_results_never_identity(testing: Testing) -> None:
    compound = small_compound(buildings=1, residents=20)
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 1)
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1"]})
    people = list(compound.residents)
    testing.ok("POST", "/rounds/r1/samples", json={"tube": "T1", "residents": people[:5], "point": "p1"})
    testing.ok("POST", "/tubes/T1/result", json={"result": "negative"})
    # Since issue 15 another system reads what its grant names (here: all of testing, health included).
    assert testing.client.get("/events", headers=testing.key(r.EXTERNAL_CONSUMER)).status_code == 403
    reader = testing.key(r.EXTERNAL_CONSUMER, grant=Grant(types=frozenset({"juwei.testing.*"}), health=True))
    feed = testing.client.get("/events", params={"after": 0}, headers=reader)
    assert feed.status_code == 200, feed.text
    events = feed.json()["events"]
    kinds = [e["type"] for e in events]
    assert kinds.count("juwei.testing.SampleCollected.v2") == 5 and "juwei.testing.TubeResulted.v2" in kinds
    for event in events:
        assert event["specversion"] == "1.0" and event["source"] == "/juwei/testing" and event["compound"] == "c1"
        if {"resident", "residents"} & set(event["data"]):  # health data: keyed by ids, nothing else about people
            assert not {"name", "phone", "id_number", "identity", "birth_year"} & set(event["data"])
        assert "result" not in event["data"]  # results stay in testing (its API), even for a health grant
    sampled = next(e for e in events if e["type"] == "juwei.testing.SampleCollected.v2")
    assert sampled["building"] == "c1:1" and sampled["data"]["resident"].startswith("c1:r")


@pytest.mark.parametrize("role", [r.HOUSEHOLD, r.LOGISTICS_VOLUNTEER, r.SUBDISTRICT_STAFF])
def test_roles_without_a_part_in_sampling_cannot_record_samples(testing: Testing, role: str) -> None:
    receive(testing.runtime, small_compound(buildings=1, residents=20).envelopes)
    open_points(testing, 1)
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1"]})
    body = {"tube": "T1", "residents": ["r00001"], "point": "p1"}
    assert testing.status("POST", "/rounds/r1/samples", testing.key(role), json=body) == 403
    assert testing.status("POST", "/tubes/T1/result", testing.key(role), json={"result": "negative"}) == 403
    assert json.loads(testing.client.get("/compounds/c1/tubes/T1", headers=testing.staff).text)["type"].endswith(
        "tube-unknown"
    )
