"""Keys over HTTP: ``GET /whoami``, staff issuing a compound's keys (the same given key in every service) and
revoking them, a holder signing out; every refusal a problem (403 role or scope, 422 body, 409 id taken)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from juwei.auth import api_keys_table
from juwei.commands import commands_table
from juwei.service import create_app
from tests.conftest import both_databases
from tests.kernel.harness import key, runtime
from tests.kernel.sample import definitions

PROBLEM = "application/problem+json"


@pytest.fixture
def desk(new_database, suffix: str) -> Iterator[tuple[TestClient, object]]:
    made = runtime(definitions(suffix)[0], new_database())
    with TestClient(create_app(made, background=False)) as client:
        yield client, made


def _h(secret: str, **extra: str) -> dict[str, str]:
    return {"X-API-Key": secret, **extra}


def _invite(client: TestClient, secret: str, compound: str = "c1", **body: object) -> object:
    payload = {"role": "household", "holder": {"kind": "household", "id": "h1-0101"}, "buildings": ["b1"], **body}
    return client.post(f"/compounds/{compound}/keys", json=payload, headers=_h(secret))


@both_databases
def test_whoami_tells_a_key_its_role_scope_holder_and_expiry(desk) -> None:
    client, made = desk
    operator = key(made, "district-operator", None)
    me = client.get("/whoami", headers=_h(operator))
    assert me.status_code == 200
    body = me.json()
    assert body == {
        "key_id": operator.split("_")[1],
        "role": "district-operator",
        "compound": None,
        "buildings": None,
        "holder": {"kind": "system", "id": "test district-operator"},
        "expires_at": None,
        "subdistrict": None,
        "compounds": None,
    }
    issued = _invite(client, operator, expires_in=3600).json()
    them = client.get("/whoami", headers=_h(issued["key"])).json()
    assert them["role"] == "household" and them["compound"] == "c1" and them["buildings"] == ["b1"]
    assert them["holder"] == {"kind": "household", "id": "c1:h1-0101"}
    assert them["expires_at"] == issued["expires_at"]
    assert datetime.fromisoformat(them["expires_at"]) > datetime.fromisoformat(issued["expires_at"]) - timedelta(1)
    nobody = client.get("/whoami")
    assert nobody.status_code == 401 and nobody.headers["content-type"] == PROBLEM


@both_databases
def test_staff_issue_a_given_key_that_works_and_is_stored_once_per_id(desk) -> None:
    client, made = desk
    staff = key(made, "committee-staff", "c1")
    given = "jw_console01_" + "s" * 40
    made_key = _invite(client, staff, key=given, label="invited at the gate")
    assert made_key.status_code == 201, made_key.text
    assert made_key.json() == {
        "key": given,
        "key_id": "console01",
        "role": "household",
        "compound": "c1",
        "buildings": ["b1"],
        "holder": {"kind": "household", "id": "c1:h1-0101"},
        "expires_at": None,
    }
    assert client.get("/whoami", headers=_h(given)).json()["key_id"] == "console01"
    # The console retrying the same key is fine; another secret under the same id is a conflict.
    assert _invite(client, staff, key=given).status_code == 201
    taken = _invite(client, staff, key="jw_console01_" + "t" * 40)
    assert taken.status_code == 409 and taken.json()["type"] == "urn:juwei:problem:key-id-taken"
    other_role = _invite(client, staff, key=given, role="logistics-volunteer", holder={"kind": "volunteer", "id": "v1"})
    assert other_role.status_code == 409


def test_committee_staff_issue_only_volunteer_and_household_keys_within_their_buildings(desk) -> None:
    client, made = desk
    staff = key(made, "committee-staff", "c1", ["b1"])
    staff_key = _invite(client, staff, role="committee-staff", holder={"kind": "staff", "id": "s9"}, buildings=None)
    assert staff_key.status_code == 403 and staff_key.json()["code"] == "role-not-issued"
    elsewhere = _invite(client, staff, buildings=["b2"])
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "buildings-out-of-scope"
    everywhere = _invite(client, staff, buildings=None)
    assert everywhere.status_code == 403
    other_compound = _invite(client, staff, compound="c2")
    assert other_compound.status_code == 403
    wrong_kind = _invite(client, staff, role="logistics-volunteer")
    assert wrong_kind.status_code == 422 and "volunteer" in wrong_kind.json()["detail"]
    assert _invite(client, key(made, "logistics-volunteer", "c1")).status_code == 403
    operator = key(made, "district-operator", None)
    secretary = _invite(client, operator, role="committee-staff", holder={"kind": "staff", "id": "s1"}, buildings=None)
    assert secretary.status_code == 201 and secretary.json()["buildings"] is None
    for body in ({"expires_in": 0}, {"expires_in": 31 * 24 * 3600}, {"holder": {"kind": "official", "id": "x"}},
                 {"key": "not-a-key"}, {"surprise": 1}, {"holder": {"kind": "household", "id": "../x"}}):  # fmt: skip
        bad = _invite(client, staff, **body)
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM, body
    with made.database.reading() as session:
        keys = session.execute(select(func.count()).select_from(api_keys_table)).scalar()
        assert keys == 4  # the three test keys and the secretary's


@both_databases
def test_an_expired_invitation_opens_nothing(desk) -> None:
    client, made = desk
    issued = _invite(client, key(made, "committee-staff", "c1"), expires_in=60).json()
    assert client.get("/whoami", headers=_h(issued["key"])).status_code == 200
    with made.database.unit_of_work() as session:
        session.execute(
            api_keys_table.update()
            .where(api_keys_table.c.id == issued["key_id"])
            .values(expires_at=datetime.fromisoformat(issued["expires_at"]) - timedelta(hours=1))
        )
    assert client.get("/whoami", headers=_h(issued["key"])).status_code == 401


@both_databases
def test_staff_revoke_keys_of_their_compound_and_a_holder_signs_out(desk) -> None:
    client, made = desk
    staff = key(made, "committee-staff", "c1", ["b1"])
    first = _invite(client, staff).json()
    second = _invite(client, staff).json()
    third = _invite(client, staff).json()
    # Another household's key may not revoke this one; a key of another compound does not see it.
    neighbour = _invite(client, staff, holder={"kind": "household", "id": "h1-0202"}).json()
    refused = client.delete(f"/compounds/c1/keys/{first['key_id']}", headers=_h(neighbour["key"]))
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert client.delete(f"/compounds/c2/keys/{first['key_id']}", headers=_h(staff)).status_code == 403
    unknown = client.delete("/compounds/c1/keys/nosuchkey", headers=_h(staff))
    assert unknown.status_code == 404 and unknown.json()["type"] == "urn:juwei:problem:unknown-key"
    # Staff revoke; the holder signs out itself, and its other keys.
    assert client.delete(f"/compounds/c1/keys/{first['key_id']}", headers=_h(staff)).status_code == 204
    assert client.get("/whoami", headers=_h(first["key"])).status_code == 401
    assert client.delete(f"/compounds/c1/keys/{second['key_id']}", headers=_h(third["key"])).status_code == 204
    assert client.delete(f"/compounds/c1/keys/{third['key_id']}", headers=_h(third["key"])).status_code == 204
    assert client.get("/whoami", headers=_h(third["key"])).status_code == 401
    # Staff limited to b1 may not revoke a key of b2 (issued by the operator).
    b2 = _invite(client, key(made, "district-operator", None), buildings=["b2"]).json()
    assert client.delete(f"/compounds/c1/keys/{b2['key_id']}", headers=_h(staff)).status_code == 403


def test_a_replayed_invitation_never_keeps_the_keys_secret(desk) -> None:
    client, made = desk
    staff = key(made, "committee-staff", "c1")
    payload = {"role": "household", "holder": {"kind": "household", "id": "h1-0101"}, "buildings": ["b1"]}
    headers = {"X-API-Key": staff, "Idempotency-Key": "invite-h1-0101-a"}
    first = client.post("/compounds/c1/keys", json=payload, headers=headers)
    assert first.status_code == 201
    again = client.post("/compounds/c1/keys", json=payload, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == {"replayed": True, "detail": "this command was already carried out"}
    with made.database.reading() as session:
        assert session.execute(select(func.count()).select_from(api_keys_table)).scalar() == 2
        stored = session.execute(select(commands_table.c.response, commands_table.c.status)).one()
    assert stored == (None, None)
