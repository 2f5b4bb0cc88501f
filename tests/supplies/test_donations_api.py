"""Donations under the no-gifts rule and the public ledger, over HTTP."""

from __future__ import annotations

from sqlalchemy import select

from contracts import roles as r
from juwei.store import events_table
from tests.conftest import both_databases
from tests.supplies.seed import seeded

PROBLEM = "application/problem+json"
GIFT = {
    "donation": "d1",
    "donor": "donor-17",
    "donor_name": "王建国",
    "items": [
        {"item": "kn95", "category": "masks", "quantity": 2000},
        {"item": "kits", "category": "Antigen kits", "quantity": 500, "unit": "box"},
        {"item": "staff_lunch", "category": "meals", "quantity": 7, "unit": "box"},
    ],
}


@both_databases
def test_only_epidemic_prevention_supplies_come_in_and_the_ledger_shows_where_they_went(supplies) -> None:
    seeded(supplies.runtime, buildings=2, residents=40)
    client, staff = supplies.client, supplies.key(r.COMMITTEE_STAFF)
    taken = client.post("/compounds/c1/donations", json=GIFT, headers=staff)
    assert taken.status_code == 201, taken.text
    assert taken.json()["accepted"] == ["kn95", "kits"] and taken.json()["refused"] == ["staff_lunch"]
    assert "meals" in taken.json()["reason"] and "no gifts" in taken.json()["reason"]
    meals = client.post(
        "/compounds/c1/donations",
        json={"donation": "d2", "donor": "donor-3", "items": [{"item": "dinner", "category": "meals", "quantity": 7}]},
        headers=staff,
    )
    assert meals.json()["accepted"] == [] and meals.json()["refused"] == ["dinner"]
    expired = client.post(
        "/compounds/c1/donations",
        json={
            "donation": "d3",
            "donor": "donor-4",
            "items": [{"item": "kits", "category": "antigen_kits", "quantity": 40}],
            "refuse_reason": "expired in March 2022",
        },
        headers=staff,
    )
    assert expired.json() == {"donation": "d3", "accepted": [], "refused": ["kits"], "reason": "expired in March 2022"}
    assert client.post("/compounds/c1/donations", json=GIFT, headers=staff).status_code == 409

    into_batch = {
        "batch": "db-1",
        "source": "donation",
        "label": "masks from donation d1",
        "whole_compound": True,
        "donations": [{"donation": "d1", "item": "kn95", "quantity": 1500}],
    }
    made = client.post("/compounds/c1/batches", json=into_batch, headers=staff)
    assert made.status_code == 201, made.text
    assert made.json()["items"] == {"kn95": 1500}
    too_much = client.post(
        "/compounds/c1/batches",
        json={**into_batch, "batch": "db-2", "donations": [{"donation": "d1", "item": "kn95", "quantity": 501}]},
        headers=staff,
    )
    assert too_much.status_code == 409 and too_much.json()["type"] == "urn:juwei:problem:donation-short"
    assert client.get("/compounds/c1/batches/db-2", headers=staff).status_code == 404  # nothing recorded
    refused_item = client.post(
        "/compounds/c1/batches",
        json={**into_batch, "batch": "db-3", "donations": [{"donation": "d1", "item": "staff_lunch", "quantity": 1}]},
        headers=staff,
    )
    assert refused_item.status_code == 409 and refused_item.json()["type"] == "urn:juwei:problem:not-accepted"
    assert client.post("/compounds/c1/batches/db-1/allocation", json={}, headers=staff).status_code == 201

    household = supplies.key(r.HOUSEHOLD)
    answer = client.get("/compounds/c1/ledger", headers=household)
    assert answer.status_code == 200
    ledger = answer.json()
    assert "王" not in answer.text  # the ledger names a donor reference, never a name
    (accepted,) = ledger["accepted"]
    assert accepted["donation"] == "d1" and accepted["donor"] == "donor-17"
    masks, kits = sorted(accepted["items"], key=lambda i: i["item"] != "kn95")
    assert (masks["allocated"], masks["in_stock"]) == (1500, 500)
    assert masks["batches"] == [
        {"batch": "db-1", "label": "masks from donation d1", "arrived_on": "2022-04-12", "quantity": 1500}
    ]
    assert (kits["category"], kits["allocated"], kits["batches"]) == ("antigen_kits", 0, [])
    refused = {(row["donation"], item["item"]): row["reason"] for row in ledger["refused"] for item in row["items"]}
    assert set(refused) == {("d1", "staff_lunch"), ("d2", "dinner"), ("d3", "kits")}
    assert refused[("d3", "kits")] == "expired in March 2022"

    with supplies.runtime.database.reading() as session:
        stored = session.execute(
            select(events_table.c.data, events_table.c.private).where(events_table.c.type.like("%.Donation%"))
        ).all()
    assert stored and all("王" not in data and "donor_name" not in data for data, _ in stored)
    assert all("王" not in (private or "") for _, private in stored)
    shown = client.get("/compounds/c1/donations/d1", headers=staff).json()
    assert shown["donor_name"] == "王建国"
    assert client.get("/compounds/c1/donations/d1", headers=household).status_code == 403
    assert client.delete("/compounds/c1/donors/donor-17/name", headers=staff).json() == {
        "donor": "donor-17",
        "erased": True,
    }
    assert client.get("/compounds/c1/donations/d1", headers=staff).json()["donor_name"] is None
    assert client.get("/compounds/c1/ledger", headers=household).json() == ledger  # the ledger stays whole
    supplies.runtime.projector.rebuild()
    assert client.get("/compounds/c1/ledger", headers=household).json() == ledger


def test_who_may_read_the_ledger_and_record_donations(supplies) -> None:
    client = supplies.client
    staff = supplies.key(r.COMMITTEE_STAFF)
    for role in (r.HOUSEHOLD, r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER, r.SAMPLING_VOLUNTEER, r.SUBDISTRICT_STAFF):
        assert client.get("/compounds/c1/ledger", headers=supplies.key(role)).status_code == 200, role
    assert client.get("/compounds/c1/ledger", headers=supplies.key(r.HOUSEHOLD, compound="c2")).status_code == 403
    assert client.get("/compounds/c1/ledger", headers=supplies.key(r.EXTERNAL_CONSUMER)).status_code == 403
    assert client.get("/compounds/c1/ledger").status_code == 401
    for role in (r.HOUSEHOLD, r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER, r.SUBDISTRICT_STAFF):
        assert client.post("/compounds/c1/donations", json=GIFT, headers=supplies.key(role)).status_code == 403
    assert client.delete("/compounds/c1/donors/donor-17/name", headers=supplies.key(r.HOUSEHOLD)).status_code == 403
    for bad in (
        {**GIFT, "items": []},
        {**GIFT, "items": [{"item": "kn95", "category": "", "quantity": 1}]},
        {**GIFT, "items": [{"item": "kn95", "category": "masks", "quantity": 0}]},
        {**GIFT, "items": [{"item": "kn95", "category": "masks", "quantity": 1}] * 2},
        {**GIFT, "donor": "王"},
        {**GIFT, "refuse_reason": ""},
        {**GIFT, "received_on": "April"},
    ):
        answer = client.post("/compounds/c1/donations", json=bad, headers=staff)
        assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, (bad, answer.text)
    assert client.get("/compounds/c1/donations/none", headers=staff).status_code == 404
    # Categories are the compound's policy: rice accepted once the committee says so.
    policy = client.get("/compounds/c1/supply-policy", headers=staff).json()
    policy["donation_categories"] = [*policy["donation_categories"], "rice"]
    assert client.put("/compounds/c1/supply-policy", json=policy, headers=staff).status_code == 200
    rice = client.post(
        "/compounds/c1/donations",
        json={"donation": "d9", "donor": "donor-9", "items": [{"item": "rice", "category": "rice", "quantity": 10}]},
        headers=staff,
    )
    assert rice.json()["accepted"] == ["rice"]
