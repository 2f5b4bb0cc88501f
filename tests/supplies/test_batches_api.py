"""Batches over HTTP: arrival, allocation plan, dispatch with the shift call, deliveries, follow-ups, progress."""

from __future__ import annotations

from sqlalchemy import func, select

from contracts import roles as r
from juwei.store import events_table, snapshots_table
from tests.conftest import both_databases
from tests.supplies.seed import seeded

PROBLEM = "application/problem+json"
# 12 April 2022 with the rota "AB" from 1 April: shift B is on duty.
POLICY = {
    "rota_pattern": "AB",
    "rota_starts_on": "2022-04-01",
    "both_shifts_households": 20,
    "both_shifts_items": 10_000,
    "card_return_hours": 48,
    "donation_categories": ["masks", "antigen kits", "disinfectant"],
}


def _events(supplies, kind: str | None = None) -> int:
    query = select(func.count()).select_from(events_table)
    if kind is not None:
        query = query.where(events_table.c.type == f"juwei.supplies.{kind}.v1")
    with supplies.runtime.database.reading() as session:
        return int(session.execute(query).scalar() or 0)


@both_databases
def test_a_batch_is_planned_dispatched_delivered_and_followed_up(supplies) -> None:
    seeded(supplies.runtime, residents=150)
    client, staff = supplies.client, supplies.key(r.COMMITTEE_STAFF)
    assert client.put("/compounds/c1/supply-policy", json=POLICY, headers=staff).status_code == 200
    some_of_3 = [f"h3-01{room:02d}" for room in range(1, 5)] + ["h3-0201"]
    arrived = client.post(
        "/compounds/c1/batches",
        json={
            "batch": "gov-1",
            "source": "government",
            "label": "保供 rice and vegetables",
            "items": [{"item": "rice", "quantity": 100, "unit": "bag"}, {"item": "vegetables", "quantity": 250}],
            "buildings": ["1", "2"],
            "households": some_of_3,
        },
        headers=staff,
    )
    assert arrived.status_code == 201, arrived.text
    early = client.post("/compounds/c1/batches/gov-1/dispatch", headers=staff)
    assert early.status_code == 409 and early.json()["type"] == "urn:juwei:problem:not-planned"

    planned = client.post("/compounds/c1/batches/gov-1/allocation", json={"method": "household_size"}, headers=staff)
    assert planned.status_code == 201, planned.text
    assert planned.json()["households"] == 53
    assert [b["building"] for b in planned.json()["buildings"]] == ["1", "2", "3"]
    plan = client.get("/compounds/c1/batches/gov-1/allocation", headers=staff).json()["shares"]
    assert sum(s["items"].get("rice", 0) for s in plan) == 100
    assert sum(s["items"]["vegetables"] for s in plan) == 250
    assert len({s["household"] for s in plan}) == len(plan)
    assert {s["status"] for s in plan} == {"planned"}
    assert _events(supplies, "AllocationPlanned") == 3 and _events(supplies, "ShiftCalled") == 0

    sent = client.post("/compounds/c1/batches/gov-1/dispatch", json={}, headers=staff)
    assert sent.status_code == 200, sent.text
    calls = {c["building"]: c for c in sent.json()["calls"]}
    assert calls["1"]["both"] and calls["1"]["shifts"] == ["A", "B"] and len(calls["1"]["volunteers"]) == 6
    assert not calls["3"]["both"] and calls["3"]["shifts"] == ["B"]
    assert calls["3"]["volunteers"] == ["v3-4", "v3-5", "v3-6"] and calls["3"]["households"] == 5
    assert client.post("/compounds/c1/batches/gov-1/dispatch", headers=staff).status_code == 409

    volunteer = supplies.key(r.LOGISTICS_VOLUNTEER, buildings=["3"])
    tasks = client.get("/compounds/c1/buildings/3/deliveries", headers=volunteer).json()["deliveries"]
    assert [(t["batch"], t["shifts"], t["progress"]) for t in tasks] == [("gov-1", ["B"], "0/5 delivered")]
    assert [(f["floor"], [h["household"] for h in f["households"]]) for f in tasks[0]["floors"]] == [
        (1, some_of_3[:4]),
        (2, ["h3-0201"]),
    ]
    floor_one = {
        "volunteer": "v3-4",
        "outcomes": [
            {"household": "h3-0101", "outcome": "delivered"},
            {"household": "h3-0102", "outcome": "delivered"},
            {"household": "h3-0103", "outcome": "no_one_home"},
            {"household": "h3-0104", "outcome": "wrong_items"},
        ],
    }
    wrong_shift = client.post(
        "/compounds/c1/batches/gov-1/buildings/3/outcomes", json={**floor_one, "volunteer": "v3-1"}, headers=volunteer
    )
    assert wrong_shift.status_code == 403 and wrong_shift.json()["type"] == "urn:juwei:problem:not-on-shift"
    done = client.post("/compounds/c1/batches/gov-1/buildings/3/outcomes", json=floor_one, headers=volunteer)
    assert done.status_code == 200, done.text
    assert (done.json()["delivered"], done.json()["follow_ups"], done.json()["households"]) == (2, 2, 5)
    again = client.post(
        "/compounds/c1/batches/gov-1/buildings/3/outcomes",
        json={"volunteer": "v3-5", "outcomes": [{"household": "h3-0101", "outcome": "delivered"}]},
        headers=volunteer,
    )
    assert again.status_code == 409 and again.json()["type"] == "urn:juwei:problem:already-done"

    follow_ups = client.get("/compounds/c1/follow-ups", headers=volunteer).json()
    assert [(f["household"], f["reason"]) for f in follow_ups["follow_ups"]] == [
        ("h3-0103", "no_one_home"),
        ("h3-0104", "wrong_items"),
    ]
    exchanged = client.post(
        "/compounds/c1/batches/gov-1/buildings/3/follow-ups/h3-0104/resolution",
        json={"resolution": "exchanged", "volunteer": "v3-6"},
        headers=volunteer,
    )
    assert exchanged.status_code == 200, exchanged.text
    second_round = client.post(
        "/compounds/c1/batches/gov-1/buildings/3/outcomes",
        json={
            "volunteer": "v3-5",
            "outcomes": [
                {"household": "h3-0103", "outcome": "delivered"},
                {"household": "h3-0201", "outcome": "delivered"},
            ],
        },
        headers=volunteer,
    )
    assert second_round.json() == {
        "batch": "gov-1",
        "building": "3",
        "households": 5,
        "delivered": 5,
        "follow_ups": 0,
        "complete": True,
    }
    assert client.get("/compounds/c1/follow-ups", headers=staff).json()["count"] == 0
    assert client.get("/compounds/c1/buildings/3/deliveries", headers=volunteer).json()["deliveries"] == []
    progress = client.get("/compounds/c1/batches/gov-1/progress", headers=staff).json()
    assert [b["text"] for b in progress["buildings"]] == [
        "Building 1: 0/24 delivered",
        "Building 2: 0/24 delivered",
        "Building 3: 5/5 delivered",
    ]
    assert progress["buildings"][2]["complete"] is True
    mine = client.get("/compounds/c1/batches/gov-1/progress", headers=volunteer).json()
    assert [b["building"] for b in mine["buildings"]] == ["3"]
    assert _events(supplies, "BuildingDelivered") == 1
    listed = client.get("/compounds/c1/batches", headers=staff).json()["batches"]
    assert [(b["batch"], b["method"], b["households"], b["dispatched_on"]) for b in listed] == [
        ("gov-1", "household_size", 53, "2022-04-12")
    ]
    shown = client.get("/compounds/c1/batches/gov-1", headers=staff).json()
    assert shown["buildings"] == ["1", "2"] and shown["for_households"] == some_of_3
    # The rebuilt read model is the one fed live.
    before = client.get("/compounds/c1/batches/gov-1/allocation", headers=staff).json()
    supplies.runtime.projector.rebuild()
    assert client.get("/compounds/c1/batches/gov-1/allocation", headers=staff).json() == before
    assert client.get("/compounds/c1/batches/gov-1/progress", headers=staff).json() == progress


@both_databases
def test_group_purchase_orders_reach_the_household_they_are_for(supplies) -> None:
    seeded(supplies.runtime, buildings=1, residents=10)
    client, staff = supplies.client, supplies.key(r.COMMITTEE_STAFF)
    arrived = client.post(
        "/compounds/c1/batches",
        json={
            "batch": "gp-1",
            "source": "group_purchase",
            "orders": [
                {"order": "o-1", "household": "h1-0302", "items": {"milk": 2, "eggs": 1}, "placed_from_outside": True},
                {"order": "o-2", "household": "h1-0101", "items": {"eggs": 2}},
            ],
        },
        headers=staff,
    )
    assert arrived.status_code == 201, arrived.text
    assert arrived.json()["items"] == {"eggs": 3, "milk": 2}
    assert (
        client.post("/compounds/c1/batches/gp-1/allocation", json={"method": "equal"}, headers=staff).status_code == 422
    )
    assert client.post("/compounds/c1/batches/gp-1/allocation", json={}, headers=staff).status_code == 201
    shares = client.get("/compounds/c1/batches/gp-1/allocation", headers=staff).json()["shares"]
    assert [(s["household"], s["items"]) for s in shares] == [
        ("h1-0101", {"eggs": 2}),
        ("h1-0302", {"eggs": 1, "milk": 2}),
    ]
    unknown = client.post(
        "/compounds/c1/batches",
        json={
            "batch": "gp-2",
            "source": "group_purchase",
            "orders": [{"order": "o-3", "household": "h9", "items": {"x": 1}}],
        },
        headers=staff,
    )
    assert unknown.status_code == 404 and unknown.json()["type"] == "urn:juwei:problem:household-unknown"


def test_role_boundaries_of_batches_and_deliveries(supplies) -> None:
    seeded(supplies.runtime, buildings=2, residents=40)
    client = supplies.client
    staff = supplies.key(r.COMMITTEE_STAFF)
    district = supplies.key(r.DISTRICT_OPERATOR, compound=None)
    elsewhere = supplies.key(r.COMMITTEE_STAFF, compound="c2")
    volunteer_1 = supplies.key(r.LOGISTICS_VOLUNTEER, buildings=["1"])
    officer_1 = supplies.key(r.INFORMATION_OFFICER, buildings=["1"])
    household = supplies.key(r.HOUSEHOLD)
    outsider = supplies.key(r.EXTERNAL_CONSUMER)
    batch = {"batch": "b1", "source": "government", "items": [{"item": "rice", "quantity": 48}], "whole_compound": True}

    def status(method: str, url: str, headers: dict, json: object = None) -> int:
        return client.request(method, url, headers=headers, json=json).status_code

    for who in (volunteer_1, officer_1, household, outsider, elsewhere):
        assert status("POST", "/compounds/c1/batches", who, batch) == 403
    assert status("POST", "/compounds/c1/batches", {"X-API-Key": "jw_nobody_x"}, batch) == 401
    assert status("POST", "/compounds/c1/batches", district, batch) == 201
    assert status("POST", "/compounds/c1/batches/b1/allocation", volunteer_1, {}) == 403
    assert status("POST", "/compounds/c1/batches/b1/allocation", staff, {}) == 201
    assert status("POST", "/compounds/c1/batches/b1/dispatch", officer_1) == 403
    assert status("POST", "/compounds/c1/batches/b1/dispatch", staff) == 200
    assert status("GET", "/compounds/c1/batches", volunteer_1) == 403
    assert status("GET", "/compounds/c1/batches/b1/progress", officer_1) == 200
    assert status("GET", "/compounds/c1/batches/b1/progress", household) == 403
    assert status("GET", "/compounds/c1/batches/b1/progress?building=2", volunteer_1) == 403
    assert status("GET", "/compounds/c1/buildings/1/deliveries", volunteer_1) == 200
    assert status("GET", "/compounds/c1/buildings/2/deliveries", volunteer_1) == 403
    assert status("GET", "/compounds/c1/buildings/1/deliveries", officer_1) == 403
    report = {"volunteer": "v2-4", "outcomes": [{"household": "h2-0101", "outcome": "delivered"}]}
    assert status("POST", "/compounds/c1/batches/b1/buildings/2/outcomes", volunteer_1, report) == 403
    nameless = client.post(
        "/compounds/c1/batches/b1/buildings/1/outcomes",
        json={"outcomes": [{"household": "h1-0101", "outcome": "delivered"}]},
        headers=volunteer_1,
    )
    assert nameless.status_code == 422 and nameless.headers["content-type"] == PROBLEM
    stranger = client.post(
        "/compounds/c1/batches/b1/buildings/1/outcomes",
        json={"volunteer": "v2-4", "outcomes": [{"household": "h1-0101", "outcome": "delivered"}]},
        headers=volunteer_1,
    )
    assert stranger.status_code == 403 and stranger.json()["type"] == "urn:juwei:problem:not-in-group"
    by_staff = client.post(
        "/compounds/c1/batches/b1/buildings/1/outcomes",
        json={"outcomes": [{"household": "h1-0101", "outcome": "delivered"}]},
        headers=staff,
    )
    assert by_staff.status_code == 200, by_staff.text
    assert status("GET", "/compounds/c1/follow-ups?building=2", volunteer_1) == 403
    assert status("GET", "/compounds/c1/follow-ups", household) == 403


def test_bad_input_is_a_422_problem_never_a_500(supplies) -> None:
    seeded(supplies.runtime, buildings=1, residents=10)
    client, staff = supplies.client, supplies.key(r.COMMITTEE_STAFF)
    bad_bodies = [
        {"batch": "b1", "source": "government", "items": [{"item": "rice", "quantity": -1}], "buildings": ["1"]},
        {"batch": "b1", "source": "airdrop", "items": [{"item": "rice", "quantity": 1}], "buildings": ["1"]},
        {"batch": "b 1", "source": "government", "items": [{"item": "rice", "quantity": 1}], "buildings": ["1"]},
        {"batch": "b1", "source": "government", "items": [{"item": "Rice!", "quantity": 1}], "buildings": ["1"]},
        {"batch": "b1", "source": "government", "items": [{"item": "rice", "quantity": 1}]},
        {"batch": "b1", "source": "government", "items": [], "buildings": ["1"]},
        {"batch": "b1", "source": "government", "items": [{"item": "rice", "quantity": 1}] * 2, "buildings": ["1"]},
        {"batch": "b1", "source": "donation", "buildings": ["1"]},
        {"batch": "b1", "source": "government", "items": [{"item": "rice", "quantity": 1}], "buildings": ["1"], "x": 1},
        [],
    ]
    for body in bad_bodies:
        answer = client.post("/compounds/c1/batches", json=body, headers=staff)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == PROBLEM
    not_json = client.post(
        "/compounds/c1/batches", content=b"{not json", headers={**staff, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert client.post("/compounds/c1/batches/nope/allocation", json={}, headers=staff).status_code == 404
    assert client.post("/compounds/c1/batches/nope/dispatch", headers=staff).status_code == 404
    made = {"batch": "b1", "source": "government", "items": [{"item": "rice", "quantity": 5}], "buildings": ["1"]}
    assert client.post("/compounds/c1/batches", json=made, headers=staff).status_code == 201
    assert client.post("/compounds/c1/batches", json=made, headers=staff).status_code == 409
    assert (
        client.post(
            "/compounds/c1/batches", json={**made, "batch": "b2", "buildings": ["9"]}, headers=staff
        ).status_code
        == 404
    )
    needs = client.post(
        "/compounds/c1/batches/b1/allocation", json={"method": "needs", "needs": ["vip"]}, headers=staff
    )
    assert needs.status_code == 422
    none_pregnant = client.post(
        "/compounds/c1/batches/b1/allocation", json={"method": "needs", "needs": ["pregnant"]}, headers=staff
    )
    assert none_pregnant.status_code == 422 and none_pregnant.json()["type"] == "urn:juwei:problem:nobody-to-allocate"
    assert client.post("/compounds/c1/batches/b1/allocation", json={}, headers=staff).status_code == 201
    assert client.post("/compounds/c1/batches/b1/dispatch", json={"on": "yesterday"}, headers=staff).status_code == 422
    assert client.post("/compounds/c1/batches/b1/dispatch", headers=staff).status_code == 200
    outcomes = "/compounds/c1/batches/b1/buildings/1/outcomes"
    for body in (
        {"outcomes": []},
        {"outcomes": [{"household": "h1-0101", "outcome": "lost"}]},
        {"outcomes": [{"household": "h1-0101", "outcome": "delivered"}] * 2},
    ):
        answer = client.post(outcomes, json=body, headers=staff)
        assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, answer.text
    nobody = client.post(outcomes, json={"outcomes": [{"household": "h1-9999", "outcome": "delivered"}]}, headers=staff)
    assert nobody.status_code == 404 and nobody.json()["type"] == "urn:juwei:problem:not-in-task"
    other_batch = client.post(
        "/compounds/c1/batches/b9/buildings/1/outcomes",
        json={"outcomes": [{"household": "h1-0101", "outcome": "delivered"}]},
        headers=staff,
    )
    assert other_batch.status_code == 404
    assert client.get("/compounds/c1/batches/b1/progress?building=x y", headers=staff).status_code == 422


def test_the_policy_sets_the_rota_and_the_both_shifts_threshold(supplies) -> None:
    client, staff = supplies.client, supplies.key(r.COMMITTEE_STAFF)
    volunteer = supplies.key(r.LOGISTICS_VOLUNTEER, buildings=["1"])
    default = client.get("/compounds/c1/supply-policy", headers=volunteer).json()
    assert default["rota_pattern"] == "AB" and "antigen_kits" in default["donation_categories"]
    assert client.put("/compounds/c1/supply-policy", json=POLICY, headers=volunteer).status_code == 403
    answer = client.put("/compounds/c1/supply-policy", json={**POLICY, "rota_pattern": "aabb"}, headers=staff)
    assert answer.status_code == 200 and answer.json()["donation_categories"] == [
        "masks",
        "antigen_kits",
        "disinfectant",
    ]
    days = client.get("/compounds/c1/rota", params={"from": "2022-04-01", "days": 6}, headers=volunteer).json()["days"]
    assert "".join(d["shift"] for d in days) == "AABBAA"
    for bad in (
        {"rota_pattern": "AC"},
        {"rota_pattern": "AAAA"},
        {"both_shifts_households": 0},
        {"card_return_hours": 0},
    ):
        answer = client.put("/compounds/c1/supply-policy", json={**POLICY, **bad}, headers=staff)
        assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, bad
    assert client.get("/compounds/c1/rota", params={"days": 0}, headers=volunteer).status_code == 422
    assert _events(supplies, "SupplyPolicySet") == 1


def test_a_tall_building_delivery_loads_from_its_snapshot(supplies) -> None:
    seeded(supplies.runtime, buildings=1, floors=40, rooms=4, residents=320)
    client, staff = supplies.client, supplies.key(r.COMMITTEE_STAFF)
    batch = {"batch": "b1", "source": "government", "items": [{"item": "rice", "quantity": 320}], "buildings": ["1"]}
    assert client.post("/compounds/c1/batches", json=batch, headers=staff).status_code == 201
    assert (
        client.post("/compounds/c1/batches/b1/allocation", json={"method": "household_size"}, headers=staff).status_code
        == 201
    )
    assert client.post("/compounds/c1/batches/b1/dispatch", headers=staff).json()["calls"][0]["both"]  # 160 > 60
    for floor in range(1, 41):
        outcomes = [{"household": f"h1-{floor:02d}{room:02d}", "outcome": "delivered"} for room in range(1, 5)]
        if floor == 40:
            outcomes[-1]["outcome"] = "no_one_home"
        answer = client.post(
            "/compounds/c1/batches/b1/buildings/1/outcomes", json={"outcomes": outcomes}, headers=staff
        )
        assert answer.status_code == 200, answer.text
    with supplies.runtime.database.reading() as session:
        snapshot = session.execute(
            select(snapshots_table.c.version).where(snapshots_table.c.stream_id == "delivery-c1:b1@c1:1")
        ).scalar()
    assert snapshot is not None and 100 <= snapshot < 160  # later loads start from it
    last = client.post(
        "/compounds/c1/batches/b1/buildings/1/outcomes",
        json={"outcomes": [{"household": "h1-4004", "outcome": "delivered"}]},
        headers=staff,
    ).json()
    assert (last["delivered"], last["households"], last["complete"]) == (160, 160, True)
