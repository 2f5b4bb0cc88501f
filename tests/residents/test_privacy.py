"""PIPL: identity stays sealed in the service, erasure shreds it everywhere, every unmasked read is audited."""

from __future__ import annotations

import json

from sqlalchemy import select

from contracts import roles as r
from juwei.auth import split_key
from juwei.callers import Grant
from juwei.service import Runtime
from juwei.store import events_table
from services.residents import importing, views
from services.residents.app import service
from tests.conftest import both_databases
from tests.residents.test_import import as_csv, buildings_rows, compound_rows, upload
from tests.residents.test_register_api import make_id, resident_body

# People registered one by one over HTTP, besides the imported ones.
PEOPLE = [
    ("r-a", "钱小红", "13712345678", make_id("19520304", "417")),
    ("r-b", "Zhang Wei", "15099887766", make_id("19880101", "238")),
]


def register_people(residents) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The import's 20 residents of two buildings, two more over HTTP, one of them corrected; (name, phone, ID)."""
    staff = residents.key(r.COMMITTEE_STAFF)
    assert (
        upload(residents, "buildings", as_csv(buildings_rows(2), importing.BUILDING_COLUMNS), staff).status_code == 200
    )
    rows = [row for row in compound_rows(2) if row["floor"] == 1]
    assert upload(residents, "residents", as_csv(rows), staff).status_code == 200
    household = rows[0]["household"]
    for resident, name, phone, id_number in PEOPLE:
        body = resident_body(resident, name=name, phone=phone, id_number=id_number, birth_year=int(id_number[6:10]))
        made = residents.client.post(f"/compounds/c1/households/{household}/residents", json=body, headers=staff)
        assert made.status_code == 201, made.text
    corrected = residents.client.put(
        f"/compounds/c1/households/{household}/residents/r-b/identity",
        json={"name": "张伟", "phone": "15011112222", "id_number": PEOPLE[1][3]},
        headers=staff,
    )
    assert corrected.status_code == 200, corrected.text
    identities = [(str(row["name"]), str(row["phone"]), str(row["id_number"])) for row in rows]
    identities += [(name, phone, id_number) for _, name, phone, id_number in PEOPLE]
    identities.append(("张伟", "15011112222", PEOPLE[1][3]))
    return staff, identities


def _stored(residents) -> list[tuple[str, str, str | None]]:
    with residents.runtime.database.reading() as session:
        return [
            tuple(row)
            for row in session.execute(select(events_table.c.type, events_table.c.data, events_table.c.private))
        ]


@both_databases
def test_no_name_phone_or_id_number_in_public_event_data_or_the_feed(residents) -> None:
    _, identities = register_people(residents)
    stored = _stored(residents)
    assert len(stored) > 40
    public = "\n".join(data for _, data, _ in stored)
    private = [p for _, _, p in stored if p is not None]
    feed: list[dict] = []
    after = 0
    reader = residents.key(r.EXTERNAL_CONSUMER, grant=Grant(types=frozenset({"juwei.residents.*"})))
    while True:
        page = residents.client.get("/events", params={"after": after, "limit": 7}, headers=reader).json()
        feed += page["events"]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert len(feed) == len(stored)
    published = json.dumps(feed, ensure_ascii=False)
    for name, phone, id_number in identities:
        for value in (name, phone, id_number):
            assert value not in public and value not in published
            assert all(value not in text for text in private)
    # Not even the identity token is published; the feed shows no token at all (the health flags' sealed
    # token travels on Kafka since issue 15, and the feed opens it for health readers only).
    assert "sealed:v1:" not in published
    assert all('"identity"' not in json.dumps(event["data"]) for event in feed)
    # The private column holds the sealed identity (one per registration and per correction) and the birth
    # year, which is identity too and stays here since issue 15.
    tokens = [json.loads(p) for p in private]
    assert len(tokens) == len(identities)
    assert all(set(t) <= {"identity", "birth_year"} and t["identity"].startswith("sealed:v1:") for t in tokens)
    assert not any(t["identity"] in public for t in tokens)
    assert '"birth_year"' not in public and '"regular_medication"' not in public
    with residents.runtime.database.reading() as session:
        kept = session.execute(select(views.residents.c.identity)).scalars().all()
    assert len(kept) == 22 and all(token.startswith("sealed:v1:") for token in kept)


def _tokens_of(residents, resident: str) -> list[str]:
    with residents.runtime.database.reading() as session:
        envelopes = [
            residents.runtime.store.decode(envelope)
            for envelope in residents.runtime.store.read_after(session, 0, limit=10_000)
        ]
    return [e.identity for e in envelopes if getattr(e, "resident", None) == resident and getattr(e, "identity", None)]


@both_databases
def test_erasure_makes_identity_unreadable_in_the_api_the_store_and_replays(residents) -> None:
    staff, _ = register_people(residents)
    runtime = residents.runtime
    client = residents.client
    tokens = _tokens_of(residents, "c1:r-b")
    assert len(tokens) == 2  # registered, then corrected
    with runtime.database.reading() as session:
        assert runtime.vault.unseal(session, "c1:r-b", tokens[0])["name"] == "Zhang Wei"
        assert runtime.vault.unseal(session, "c1:r-b", tokens[1])["name"] == "张伟"
        head = runtime.store.head(session)
    before = client.get("/compounds/c1/residents/r-b", headers=staff).json()

    assert client.delete("/compounds/c1/residents/r-b", headers=staff).status_code == 204

    def shown(who: str) -> dict:
        return client.get(f"/compounds/c1/residents/{who}", params={"reveal": True}, headers=staff).json()

    after = shown("r-b")
    assert after["erased"] is True and not {"name", "phone", "id_number"} & set(after)
    # Household, building, floor, room, birth year, elderly and infant are still there; the health flags are
    # gone with the identity (issue 15: they stayed before).
    health = ("regular_medication", "mobility_impaired", "bedridden", "pregnant")
    assert all(flag in before for flag in health) and not set(health) & set(after)
    ignored = ("erased", "masked", "name", "phone", "id_number", *health)
    assert {k: v for k, v in after.items() if k not in ignored} == {k: v for k, v in before.items() if k not in ignored}
    assert shown("r-a")["name"] == "钱小红"  # the neighbour in the same flat is untouched
    with runtime.database.reading() as session:
        assert all(runtime.vault.unseal(session, "c1:r-b", token) is None for token in tokens)
        assert runtime.store.head(session) == head + 1  # the log only grew (ResidentErased)
        assert _tokens_of(residents, "c1:r-b") == tokens  # and still holds the sealed tokens
        row = session.execute(select(views.residents).where(views.residents.c.resident == "c1:r-b")).one()
    assert row.identity is None and row.erased

    assert runtime.projector.rebuild() == len(_stored(residents))
    assert shown("r-b")["erased"] is True and "name" not in shown("r-b")
    assert shown("r-a")["phone"] == "13712345678"
    with runtime.database.reading() as session:
        row = session.execute(select(views.residents).where(views.residents.c.resident == "c1:r-b")).one()
    assert row.identity is None and row.erased and row.household == "c1:" + before["household"]

    # Another process replaying the log with the same vault key reads nothing of the erased resident.
    other = Runtime(service, runtime.settings, database_url=runtime.database.url)
    with other.database.reading() as session:
        envelopes = other.store.read_after(session, 0, limit=10_000)
        sealed = [other.store.decode(e) for e in envelopes if e.private]
        readable = {e.resident: other.vault.unseal(session, e.resident, e.identity) for e in sealed}
    other.database.dispose()
    assert readable["c1:r-b"] is None and readable["c1:r-a"]["name"] == "钱小红"


@both_databases
def test_every_unmasked_read_leaves_one_audit_row_per_resident(residents) -> None:
    staff, _ = register_people(residents)
    client = residents.client
    officer_key = residents.key(r.INFORMATION_OFFICER, "c1", ["b1"])
    officer_id = split_key(officer_key["X-API-Key"])[0]
    client.delete("/compounds/c1/residents/r-a", headers=staff)

    masked = client.get("/compounds/c1/buildings/b1/households", headers=officer_key)
    assert masked.status_code == 200
    assert client.get("/compounds/c1/identity-reads", headers=staff).json()["reads"] == []

    revealed = client.get("/compounds/c1/buildings/b1/households", params={"reveal": True}, headers=officer_key)
    assert revealed.status_code == 200
    members = [m for h in revealed.json()["households"] for m in h["members"]]
    visible = [m["resident"] for m in members if not m["erased"]]
    assert len(members) == 12 and len(visible) == 11  # r-a was erased: nothing of theirs to show, nothing logged
    reads = client.get("/compounds/c1/identity-reads", params={"limit": 1000}, headers=staff).json()["reads"]
    assert sorted(read["resident"] for read in reads) == sorted(visible)
    assert {(read["key_id"], read["role"], read["request_id"]) for read in reads} == {
        (officer_id, r.INFORMATION_OFFICER, revealed.headers["x-request-id"])
    }
    assert all(read["fields"] == ["name", "phone", "id_number"] for read in reads)

    one = client.get("/compounds/c1/residents/r-b", params={"reveal": True}, headers=staff)
    assert one.json()["masked"] is False
    mine = client.get("/compounds/c1/identity-reads", params={"resident": "r-b"}, headers=staff).json()["reads"]
    assert [(read["role"], read["request_id"]) for read in mine] == [
        (r.INFORMATION_OFFICER, revealed.headers["x-request-id"]),
        (r.COMMITTEE_STAFF, one.headers["x-request-id"]),
    ]
    first = client.get("/compounds/c1/identity-reads", params={"limit": 5}, headers=staff).json()
    rest = client.get("/compounds/c1/identity-reads", params={"after": first["next_after"]}, headers=staff).json()
    assert len(first["reads"]) == 5 and len(rest["reads"]) == len(reads) + 1 - 5
    assert client.get("/compounds/c1/identity-reads", headers=officer_key).status_code == 403
    assert client.get("/compounds/c2/identity-reads", headers=residents.key(r.COMMITTEE_STAFF, "c2")).json() == {
        "reads": [],
        "next_after": 0,
    }
    refused = client.get(
        "/compounds/c1/residents/r-b", params={"reveal": True}, headers=residents.key(r.LOGISTICS_VOLUNTEER, "c1")
    )
    assert refused.status_code == 403
    count = len(client.get("/compounds/c1/identity-reads", params={"limit": 1000}, headers=staff).json()["reads"])
    assert count == len(reads) + 1
