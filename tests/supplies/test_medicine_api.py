"""Medicine for the elderly over HTTP: needs, the card's custody chain, overdue alerts, erasure, every role."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from sqlalchemy import func, select

from contracts import residents as rev
from contracts import roles as r
from juwei.events import utcnow
from juwei.store import events_table
from services.supplies import handlers
from services.supplies.views import card_history
from tests.conftest import both_databases
from tests.supplies.seed import feed, seeded

PROBLEM = "application/problem+json"
NEED = {"medicine": "硝苯地平控释片 30mg", "quantity": "2 boxes", "hospital": "瑞金医院"}


def _count(supplies) -> int:
    with supplies.runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar() or 0)


def _handover(
    client, headers: dict, handover: str, giver: tuple[str, str], receiver: tuple[str, str], cards: list[str]
):
    return client.post(
        "/compounds/c1/card-handovers",
        json={
            "handover": handover,
            "giver": {"kind": giver[0], "id": giver[1]},
            "receiver": {"kind": receiver[0], "id": receiver[1]},
            "cards": cards,
        },
        headers=headers,
    )


@both_databases
def test_the_card_goes_out_and_comes_back_with_every_handover_recorded(supplies) -> None:
    seeded(supplies.runtime, buildings=2, residents=40)  # r0-r23 live in building 1, r24-r39 in building 2
    client = supplies.client
    staff = supplies.key(r.COMMITTEE_STAFF)
    officer = supplies.key(r.INFORMATION_OFFICER, buildings=["1"])
    leader = supplies.key(r.LOGISTICS_VOLUNTEER, buildings=["1"])
    subdistrict = supplies.key(r.SUBDISTRICT_STAFF)

    for n, who in ((0, officer), (1, officer), (2, officer), (24, staff)):
        body = {"request": f"m{n}", "resident": f"r{n}", **NEED}
        if who is officer:
            body["officer"] = "v1-0"
        made = client.post("/compounds/c1/medicine-requests", json=body, headers=who)
        assert made.status_code == 201, made.text
    assert made.json() == {"request": "m24", "resident": "r24", "household": "h2-0101", "building": "2"}
    with supplies.runtime.database.reading() as session:
        stored = session.execute(
            select(events_table.c.data, events_table.c.private).where(
                events_table.c.type == "juwei.supplies.MedicineRequested.v1"
            )
        ).all()
    assert len(stored) == 4
    assert all("硝苯地平" not in data and "瑞金" not in data and "prescription" not in data for data, _ in stored)
    assert all(private.startswith('{"prescription":"sealed:v1:') for _, private in stored)
    needs = client.get("/compounds/c1/buildings/1/medicine-requests", headers=officer).json()["requests"]
    assert [(n["request"], n["resident"], n["status"]) for n in needs] == [
        ("m0", "r0", "open"),
        ("m1", "r1", "open"),
        ("m2", "r2", "open"),
    ]
    assert needs[0]["prescription"] == NEED

    for n in (0, 1, 2):
        collected = client.post(f"/compounds/c1/cards/r{n}/collection", json={"leader": "v1-1"}, headers=leader)
        assert collected.status_code == 200, collected.text
    sent = _handover(client, leader, "ho-1", ("volunteer", "v1-1"), ("subdistrict", "sd-wang"), ["r0", "r1", "r2"])
    assert sent.status_code == 201, sent.text
    back = _handover(client, subdistrict, "ho-2", ("subdistrict", "sd-wang"), ("volunteer", "v1-1"), ["r2"])
    assert back.status_code == 201, back.text

    # r2 is with the leader now: a handover of r0 and r2 by the subdistrict is refused whole, nothing recorded.
    before = _count(supplies)
    refused = _handover(client, subdistrict, "ho-3", ("subdistrict", "sd-wang"), ("volunteer", "v1-1"), ["r0", "r2"])
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "urn:juwei:problem:not-the-custodian"
    assert refused.json()["detail"] == (
        "the card of resident c1:r2 is held by volunteer c1:v1-1, not by subdistrict staff sd-wang:"
        " only the card's custodian can hand it over"
    )
    assert _count(supplies) == before
    impostor = _handover(client, leader, "ho-4", ("volunteer", "v1-2"), ("subdistrict", "sd-wang"), ["r2"])
    assert impostor.status_code == 409 and _count(supplies) == before
    assert client.get("/compounds/c1/cards/r0/history", headers=staff).json()["holder"] == {
        "kind": "subdistrict",
        "id": "sd-wang",
    }

    bought = client.post(
        "/compounds/c1/medicine-requests/m0/purchase",
        json={"buyer": {"kind": "subdistrict", "id": "sd-wang"}},
        headers=subdistrict,
    )
    assert bought.status_code == 200, bought.text
    not_with_buyer = client.post(
        "/compounds/c1/medicine-requests/m2/purchase",
        json={"buyer": {"kind": "subdistrict", "id": "sd-wang"}},
        headers=subdistrict,
    )
    assert (
        not_with_buyer.status_code == 409 and not_with_buyer.json()["type"] == "urn:juwei:problem:card-not-with-buyer"
    )
    assert (
        _handover(
            client, subdistrict, "ho-5", ("subdistrict", "sd-wang"), ("volunteer", "v1-1"), ["r0", "r1"]
        ).status_code
        == 201
    )
    assert (
        _handover(client, subdistrict, "ho-5", ("subdistrict", "sd-wang"), ("volunteer", "v1-1"), ["r0"]).status_code
        == 409
    )
    home = client.post(
        "/compounds/c1/cards/r0/return", json={"giver": {"kind": "volunteer", "id": "v1-1"}}, headers=leader
    )
    assert home.json() == {"card": "r0", "fulfilled": ["m0"], "still_open": []}
    home = client.post(
        "/compounds/c1/cards/r1/return", json={"giver": {"kind": "volunteer", "id": "v1-1"}}, headers=leader
    )
    assert home.json() == {"card": "r1", "fulfilled": [], "still_open": ["m1"]}  # not bought: the need stays open

    history = client.get("/compounds/c1/cards/r0/history", headers=leader).json()
    assert [s["step"] for s in history["history"]] == [
        "requested",
        "collected",
        "handed_over",
        "purchased",
        "handed_over",
        "returned",
    ]
    chain = [s for s in history["history"] if s["receiver"]]
    for earlier, later in pairwise(chain):
        assert later["giver"] == earlier["receiver"]  # exactly one custodian: each giver held the card
    assert chain[0]["giver"] == chain[-1]["receiver"] == {"kind": "household", "id": "h1-0101"}
    assert [s["handover"] for s in history["history"]][2] == "ho-1"

    where = {c["card"]: c for c in client.get("/compounds/c1/cards", headers=staff).json()["cards"]}
    assert where["r0"]["holder"] == {"kind": "household", "id": "h1-0101"}
    assert where["r2"]["holder"] == {"kind": "volunteer", "id": "v1-1"} and where["r2"]["out_since"]
    assert [c["card"] for c in client.get("/compounds/c1/cards?out=true", headers=subdistrict).json()["cards"]] == [
        "r2"
    ]
    outstanding = client.get("/compounds/c1/medicine/outstanding", headers=staff).json()["buildings"]
    assert outstanding == [
        {"building": "1", "open_requests": 2, "bought_not_home": 0, "cards_out": 1, "cards_overdue": 0},
        {"building": "2", "open_requests": 1, "bought_not_home": 0, "cards_out": 0, "cards_overdue": 0},
    ]
    statuses = client.get("/compounds/c1/buildings/1/medicine-requests?status=fulfilled", headers=staff).json()
    assert [n["request"] for n in statuses["requests"]] == ["m0"]

    # A card out longer than the limit (48 hours by default) raises one alert.
    assert handlers.raise_overdue_alerts(supplies.runtime, now=utcnow() + timedelta(hours=47)) == 0
    assert handlers.raise_overdue_alerts(supplies.runtime, now=utcnow() + timedelta(hours=49)) == 1
    assert handlers.raise_overdue_alerts(supplies.runtime, now=utcnow() + timedelta(hours=99)) == 0
    outstanding = client.get("/compounds/c1/medicine/outstanding?building=1", headers=leader).json()["buildings"]
    assert outstanding[0]["cards_overdue"] == 1
    assert client.get("/compounds/c1/cards/r2/history", headers=staff).json()["history"][-1]["step"] == "overdue"
    before = client.get("/compounds/c1/cards", headers=staff).json()
    history = client.get("/compounds/c1/cards/r2/history", headers=staff).json()
    with supplies.runtime.database.reading() as session:
        rows = session.execute(select(card_history).order_by(card_history.c.seq)).all()
    supplies.runtime.projector.rebuild()
    assert client.get("/compounds/c1/cards", headers=staff).json() == before
    assert client.get("/compounds/c1/cards/r2/history", headers=staff).json() == history
    # Row for row, keys included: a rebuild on PostgreSQL makes the same read model (a serial would go on).
    with supplies.runtime.database.reading() as session:
        assert session.execute(select(card_history).order_by(card_history.c.seq)).all() == rows


def test_role_boundaries_of_the_medicine_routes(supplies) -> None:
    compound = seeded(supplies.runtime, buildings=2, residents=40)
    client = supplies.client
    staff = supplies.key(r.COMMITTEE_STAFF)
    officer_1 = supplies.key(r.INFORMATION_OFFICER, buildings=["1"])
    leader_2 = supplies.key(r.LOGISTICS_VOLUNTEER, buildings=["2"])
    subdistrict = supplies.key(r.SUBDISTRICT_STAFF)
    household = supplies.key(r.HOUSEHOLD)
    outsider = supplies.key(r.EXTERNAL_CONSUMER)

    def need(n: int, headers: dict, officer: str | None = "v1-0") -> int:
        body = {"request": f"m{n}", "resident": f"r{n}", **NEED}
        if officer:
            body["officer"] = officer
        return client.post("/compounds/c1/medicine-requests", json=body, headers=headers).status_code

    assert need(24, officer_1) == 403  # building 2 is not theirs
    assert need(0, officer_1, officer="v1-1") == 403  # v1-1 is not the information officer
    assert need(0, officer_1, officer=None) == 422
    for who in (leader_2, subdistrict, household, outsider):
        assert need(0, who) == 403
    assert need(0, officer_1) == 201
    assert need(0, staff) == 409  # the same request twice
    assert need(99, staff) == 404  # no such resident
    assert client.get("/compounds/c1/buildings/1/medicine-requests", headers=subdistrict).status_code == 200
    assert client.get("/compounds/c1/buildings/1/medicine-requests", headers=leader_2).status_code == 403
    assert client.get("/compounds/c1/buildings/2/medicine-requests", headers=officer_1).status_code == 403
    assert (
        client.post("/compounds/c1/cards/r0/collection", json={"leader": "v1-1"}, headers=leader_2).status_code == 403
    )
    not_leader = client.post("/compounds/c1/cards/r0/collection", json={"leader": "v1-2"}, headers=staff)
    assert not_leader.status_code == 403 and not_leader.json()["type"] == "urn:juwei:problem:not-the-leader"
    assert client.post("/compounds/c1/cards/r0/collection", json={"leader": "v1-1"}, headers=staff).status_code == 200
    assert client.post("/compounds/c1/cards/r9/collection", json={"leader": "v1-1"}, headers=staff).status_code == 404
    between_volunteers = _handover(client, subdistrict, "ho-1", ("volunteer", "v1-1"), ("volunteer", "v1-2"), ["r0"])
    assert between_volunteers.status_code == 403
    assert (
        _handover(client, leader_2, "ho-1", ("volunteer", "v1-1"), ("subdistrict", "sd-1"), ["r0"]).status_code == 403
    )
    for bad in (
        {
            "handover": "ho-1",
            "giver": {"kind": "volunteer", "id": "v1-1"},
            "receiver": {"kind": "mayor", "id": "x"},
            "cards": ["r0"],
        },
        {
            "handover": "ho-1",
            "giver": {"kind": "volunteer", "id": "v1-1"},
            "receiver": {"kind": "subdistrict", "id": "s"},
            "cards": [],
        },
        {
            "handover": "ho-1",
            "giver": {"kind": "volunteer", "id": "v1-1"},
            "receiver": {"kind": "subdistrict", "id": "s"},
            "cards": ["r0", "r0"],
        },
    ):
        answer = client.post("/compounds/c1/card-handovers", json=bad, headers=staff)
        assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, answer.text
    assert (
        client.post(
            "/compounds/c1/medicine-requests/m0/purchase",
            json={"buyer": {"kind": "subdistrict", "id": "s"}},
            headers=leader_2,
        ).status_code
        == 403
    )
    for path in ("/compounds/c1/cards", "/compounds/c1/cards/r0/history", "/compounds/c1/medicine/outstanding"):
        assert client.get(path, headers=household).status_code == 403
        assert client.get(path, headers=outsider).status_code == 403
    assert client.get("/compounds/c1/cards/r0/history", headers=leader_2).status_code == 403
    assert client.get("/compounds/c1/cards?building=1", headers=leader_2).status_code == 403

    # Erasure in the residents service reaches here: the erased resident's prescriptions become unreadable.
    feed(
        supplies.runtime,
        [
            compound.event(
                "household-c1:h1-0101", rev.ResidentErased(resident="c1:r0", household="c1:h1-0101", building="c1:1")
            )
        ],
    )
    needs = client.get("/compounds/c1/buildings/1/medicine-requests", headers=staff).json()["requests"]
    assert needs[0]["request"] == "m0" and needs[0]["prescription"] is None
    assert need(5, staff) == 201
    erased = client.post(
        "/compounds/c1/medicine-requests", json={"request": "m7", "resident": "r0", **NEED}, headers=staff
    )
    assert erased.status_code == 404
