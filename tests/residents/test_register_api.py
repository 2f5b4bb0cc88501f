"""Buildings, households and residents over HTTP: each route, bad input, rule violations, every role boundary."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from contracts import roles as r
from juwei.audit import sensitive_reads_table
from juwei.store import events_table
from services.residents import views
from services.residents.application.disclosure import mask_id_number, mask_name, mask_phone
from services.residents.domain import id_check_char
from tests.conftest import both_databases

PROBLEM = "application/problem+json"
ID_R1 = "11010519491231002X"  # GB 11643's own example: born 31 December 1949


def make_id(birth: str, seq: str = "123", area: str = "310101") -> str:
    first17 = area + birth + seq
    return first17 + id_check_char(first17)


def resident_body(resident: str, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "resident": resident,
        "name": "王秀英",
        "phone": "13912345678",
        "id_number": make_id("19800512", seq=f"{int.from_bytes(resident.encode()) % 1000:03d}"),
        "birth_year": 1980,
    }
    return body | over


def head(residents) -> int:
    with residents.runtime.database.reading() as session:
        return residents.runtime.store.head(session)


def types_after(residents, position: int) -> list[str]:
    with residents.runtime.database.reading() as session:
        return [e.type.split(".")[2] for e in residents.runtime.store.read_after(session, position)]


def seed(residents) -> dict[str, str]:
    """Buildings b1 and b2; households h1, h2 in b1 and h3 in b2; r1 (representative) and r2 in h1, r3 in h2."""
    staff = residents.key(r.COMMITTEE_STAFF)
    client = residents.client
    for building, number in (("b1", "1"), ("b2", "2")):
        made = client.post(
            "/compounds/c1/buildings",
            json={
                "building": building,
                "number": number,
                "floors": 18,
                "rooms_per_floor": 4,
                "lifts": 2,
                "lift_capacity": 8,
            },
            headers=staff,
        )
        assert made.status_code == 201, made.text
    for household, building, floor, room in (("h1", "b1", 3, 2), ("h2", "b1", 5, 1), ("h3", "b2", 1, 4)):
        made = client.post(
            "/compounds/c1/households",
            json={"household": household, "building": building, "floor": floor, "room": room},
            headers=staff,
        )
        assert made.status_code == 201, made.text
    people = [
        (
            "h1",
            resident_body(
                "r1",
                name="张三",
                phone="13800138000",
                id_number=ID_R1,
                birth_year=1949,
                regular_medication=True,
                representative=True,
            ),
        ),
        ("h1", resident_body("r2", name="李四", phone="13900139000")),
        ("h2", resident_body("r3", name="欧阳娜娜", phone=None, id_number=None, birth_year=2021, infant=True)),
    ]
    for household, body in people:
        made = client.post(f"/compounds/c1/households/{household}/residents", json=body, headers=staff)
        assert made.status_code == 201, made.text
    return staff


def test_masks() -> None:
    assert mask_phone("13800138000") == "138****8000"
    assert mask_id_number("310101199001011234") == "3101**********1234"
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧***" and mask_name("王") == "*"
    assert mask_phone(None) is None and mask_id_number(None) is None


@both_databases
def test_register_a_building_a_household_and_residents_and_read_them_back(residents) -> None:
    staff = seed(residents)
    client = residents.client
    buildings = client.get("/compounds/c1/buildings", headers=staff).json()["buildings"]
    assert [(b["building"], b["households"], b["residents"]) for b in buildings] == [("b1", 2, 3), ("b2", 1, 0)]
    assert buildings[0] | {"households": 0, "residents": 0} == {
        "building": "b1", "number": "1", "floors": 18, "rooms_per_floor": 4, "lifts": 2, "lift_capacity": 8,
        "households": 0, "residents": 0,
    }  # fmt: skip

    listing = client.get("/compounds/c1/buildings/b1/households", headers=staff)
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert body["revealed"] is False
    assert [(h["household"], h["floor"], h["room"], h["representative"]) for h in body["households"]] == [
        ("h1", 3, 2, "r1"),
        ("h2", 5, 1, None),
    ]
    r1, r2 = body["households"][0]["members"]
    assert r1 == {
        "resident": "r1", "household": "h1", "building": "b1", "floor": 3, "room": 2, "birth_year": 1949,
        "elderly": True, "regular_medication": True, "mobility_impaired": False, "bedridden": False,
        "pregnant": False, "infant": False, "representative": True, "erased": False, "masked": True,
        "name": "张*", "phone": "138****8000", "id_number": "1101**********002X",
    }  # fmt: skip
    assert (r2["name"], r2["representative"], r2["elderly"]) == ("李*", False, False)
    r3 = body["households"][1]["members"][0]
    assert (r3["name"], r3["phone"], r3["id_number"], r3["infant"]) == ("欧***", None, None, True)

    one = client.get("/compounds/c1/residents/r1", headers=staff).json()
    assert one == r1

    # Events speak district-wide ids; the API answered with the compound's own.
    with residents.runtime.database.reading() as session:
        rows = session.execute(select(events_table.c.type, events_table.c.stream_id)).all()
    kinds = [t.split(".")[2] for t, _ in rows]
    assert kinds.count("BuildingRegistered") == 2 and kinds.count("HouseholdRegistered") == 3
    assert kinds.count("ResidentRegistered") == 3 and kinds.count("RepresentativeChosen") == 1
    assert {s for _, s in rows} >= {"building-c1:b1", "household-c1:h1", "household-c1:h3"}


@both_databases
def test_needs_move_representative_and_identity_correction(residents) -> None:
    staff = seed(residents)
    client = residents.client
    before = head(residents)
    needs = client.patch(
        "/compounds/c1/households/h1/residents/r2/needs", json={"mobility_impaired": True}, headers=staff
    )
    assert needs.status_code == 200, needs.text
    assert needs.json()["mobility_impaired"] and not needs.json()["regular_medication"]
    assert types_after(residents, before) == ["ResidentNeedsChanged"]
    again = client.patch(
        "/compounds/c1/households/h1/residents/r2/needs", json={"mobility_impaired": True}, headers=staff
    )
    assert again.status_code == 200 and types_after(residents, before) == ["ResidentNeedsChanged"]  # no change

    chosen = client.post("/compounds/c1/households/h1/representative", json={"resident": "r2"}, headers=staff)
    assert chosen.status_code == 200 and chosen.json()["representative"] == "r2"

    moved = client.post("/compounds/c1/households/h1/residents/r2/move", json={"to_household": "h3"}, headers=staff)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["household"], moved.json()["building"], moved.json()["floor"]) == ("h3", "b2", 1)
    assert moved.json()["mobility_impaired"] and moved.json()["name"] == "李*"  # flags and identity travel along
    h1 = client.get("/compounds/c1/buildings/b1/households", headers=staff).json()["households"][0]
    assert h1["representative"] is None and [m["resident"] for m in h1["members"]] == ["r1"]

    corrected = client.put(
        "/compounds/c1/households/h1/residents/r1/identity",
        json={"name": "张叁", "phone": "+86 138-0013-8001", "id_number": ID_R1.lower()},
        headers=staff,
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["phone"] == "138****8001"
    revealed = client.get("/compounds/c1/residents/r1", params={"reveal": True}, headers=staff).json()
    assert (revealed["name"], revealed["phone"], revealed["id_number"]) == ("张叁", "13800138001", ID_R1)
    assert types_after(residents, before) == [
        "ResidentNeedsChanged",
        "RepresentativeChosen",
        "ResidentMoved",
        "ResidentArrived",
        "ResidentIdentityCorrected",
    ]


@both_databases
def test_erasure_keeps_the_register_consistent_and_retires_the_id(residents) -> None:
    staff = seed(residents)
    client = residents.client
    erased = client.delete("/compounds/c1/residents/r1", headers=staff)
    assert erased.status_code == 204
    shown = client.get("/compounds/c1/residents/r1", params={"reveal": True}, headers=staff).json()
    assert shown["erased"] is True and not {"name", "phone", "id_number"} & set(shown)
    # Erasure takes the health flags with the identity (issue 15: they were kept before).
    assert (shown["household"], shown["building"]) == ("h1", "b1") and "regular_medication" not in shown
    h1 = client.get("/compounds/c1/buildings/b1/households", headers=staff).json()["households"][0]
    assert h1["representative"] is None  # the representative was erased
    assert [(m["resident"], m["erased"]) for m in h1["members"]] == [("r1", True), ("r2", False)]
    assert h1["members"][1]["name"] == "李*"
    counts = {
        b["building"]: b["residents"] for b in client.get("/compounds/c1/buildings", headers=staff).json()["buildings"]
    }
    assert counts == {"b1": 2, "b2": 0}

    position = head(residents)
    assert client.delete("/compounds/c1/residents/r1", headers=staff).status_code == 204
    assert head(residents) == position  # erasing twice records nothing
    again = client.post("/compounds/c1/households/h1/residents", json=resident_body("r1"), headers=staff)
    assert again.status_code == 409 and "erased" in again.json()["detail"]
    fix = client.put("/compounds/c1/households/h1/residents/r1/identity", json={"name": "张三"}, headers=staff)
    assert fix.status_code == 409 and fix.json()["type"] == "urn:juwei:problem:resident-erased"
    assert head(residents) == position
    with residents.runtime.database.reading() as session:
        assert residents.runtime.vault.is_shredded(session, "c1:r1")
        assert residents.runtime.vault.is_shredded(session, "c1:r1#health")
        assert not residents.runtime.vault.is_shredded(session, "c1:r2")
        assert not residents.runtime.vault.is_shredded(session, "c1:r2#health")


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


@both_databases
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(residents) -> None:
    staff = seed(residents)
    client = residents.client
    position = head(residents)

    def resident(**over: object) -> dict:
        return _problem(
            client.post("/compounds/c1/households/h1/residents", json=resident_body("r9", **over), headers=staff), 422
        )

    assert resident(phone="23800138000")["errors"][0]["location"] == ["body", "phone"]
    assert resident(phone="1380013800")["errors"][0]["message"] == "a mobile number has 11 digits and starts with 1"
    bad_check = resident(id_number="110105194912310021", birth_year=1949)
    assert bad_check["errors"] == [
        {"location": ["body", "id_number"], "message": "the ID-card number's check digit is wrong", "type": "id_number"}
    ]
    assert resident(birth_year=1990)["errors"][0]["location"] == ["body", "birth_year"]  # not the ID's 1980
    assert resident(name=" ")["errors"][0]["location"] == ["body", "name"]
    assert resident(nickname="小王")["errors"][0]["location"] == ["body", "nickname"]  # unknown field
    bad_id = client.post(
        "/compounds/c1/households/h1/residents", json=resident_body("r9") | {"resident": "r 9"}, headers=staff
    )
    assert _problem(bad_id, 422)["errors"][0]["location"] == ["body", "resident"]
    assert resident(birth_year=1880, id_number=None)["type"] == "urn:juwei:problem:invalid-resident"

    def household(**over: object) -> dict:
        body = {"household": "h9", "building": "b1", "floor": 3, "room": 1} | over
        return _problem(client.post("/compounds/c1/households", json=body, headers=staff), 422)

    outside = household(floor=19)
    assert outside["type"] == "urn:juwei:problem:no-such-room" and "floor 19" in outside["detail"]
    assert household(room=5)["type"] == "urn:juwei:problem:no-such-room"
    assert household(floor=0)["errors"][0]["location"] == ["body", "floor"]
    assert household(flat="3-2")["errors"][0]["location"] == ["body", "flat"]

    def building(**over: object) -> dict:
        body = {"building": "b9", "number": "9", "floors": 18, "rooms_per_floor": 4, "lifts": 1, "lift_capacity": 8}
        return _problem(client.post("/compounds/c1/buildings", json=body | over, headers=staff), 422)

    assert building(floors=0)["errors"][0]["location"] == ["body", "floors"]
    assert building(lift_capacity=0)["type"] == "urn:juwei:problem:invalid-building"
    assert building(colour="red")["errors"][0]["location"] == ["body", "colour"]

    needs = client.patch("/compounds/c1/households/h1/residents/r1/needs", json={"elderly": False}, headers=staff)
    assert _problem(needs, 422)["errors"][0]["location"] == ["body", "elderly"]  # derived, never set
    identity = client.put(
        "/compounds/c1/households/h1/residents/r2/identity", json={"name": "李四", "id_number": ID_R1}, headers=staff
    )
    assert _problem(identity, 422)["errors"][0]["location"] == ["body", "id_number"]  # born 1949, not 1980
    assert head(residents) == position
    with residents.runtime.database.reading() as session:
        assert session.execute(select(func.count()).select_from(views.residents)).scalar() == 3


@both_databases
def test_rule_violations_are_409_and_unknown_things_404(residents) -> None:
    staff = seed(residents)
    client = residents.client
    position = head(residents)
    twice = client.post(
        "/compounds/c1/buildings",
        json={"building": "b1", "number": "1", "floors": 9, "rooms_per_floor": 2, "lifts": 0, "lift_capacity": 0},
        headers=staff,
    )
    assert _problem(twice, 409)["type"] == "urn:juwei:problem:building-exists"
    again = client.post(
        "/compounds/c1/households", json={"household": "h1", "building": "b2", "floor": 1, "room": 1}, headers=staff
    )
    assert _problem(again, 409)["type"] == "urn:juwei:problem:household-exists"
    elsewhere = client.post("/compounds/c1/households/h3/residents", json=resident_body("r2"), headers=staff)
    assert "lives in household h1" in _problem(elsewhere, 409)["detail"]
    stranger = client.post("/compounds/c1/households/h1/representative", json={"resident": "r3"}, headers=staff)
    assert _problem(stranger, 409)["type"] == "urn:juwei:problem:not-a-member"
    same = client.post("/compounds/c1/households/h1/residents/r1/move", json={"to_household": "h1"}, headers=staff)
    assert _problem(same, 409)["type"] == "urn:juwei:problem:same-household"
    assert head(residents) == position

    for response in (
        client.post("/compounds/c1/households/h9/residents", json=resident_body("r9"), headers=staff),
        client.post(
            "/compounds/c1/households",
            json={"household": "h9", "building": "b9", "floor": 1, "room": 1},
            headers=staff,
        ),
        client.get("/compounds/c1/residents/r9", headers=staff),
        client.get("/compounds/c1/buildings/b9/households", headers=staff),
        client.patch("/compounds/c1/households/h2/residents/r1/needs", json={"infant": True}, headers=staff),
        client.post("/compounds/c1/households/h1/residents/r1/move", json={"to_household": "h9"}, headers=staff),
        client.delete("/compounds/c1/residents/r9", headers=staff),
    ):
        _problem(response, 404)
    assert head(residents) == position


# --- role boundaries --------------------------------------------------------------------------------------

Call = Callable[[httpx.Client, dict[str, str]], httpx.Response]
BUILDINGS_CSV = "building,number,floors,rooms_per_floor,lifts,lift_capacity\nb8,8,12,4,1,8\n"

# Every route, in an order in which each succeeds for a role that may use it, with its success status.
OPERATIONS: list[tuple[str, int, Call]] = [
    ("list buildings", 200, lambda c, h: c.get("/compounds/c1/buildings", headers=h)),
    ("register building", 201, lambda c, h: c.post(
        "/compounds/c1/buildings",
        json={"building": "b9", "number": "9", "floors": 6, "rooms_per_floor": 2, "lifts": 0, "lift_capacity": 0},
        headers=h)),
    ("register household", 201, lambda c, h: c.post(
        "/compounds/c1/households", json={"household": "h9", "building": "b1", "floor": 2, "room": 2}, headers=h)),
    ("register resident", 201, lambda c, h: c.post(
        "/compounds/c1/households/h1/residents", json=resident_body("r9"), headers=h)),
    ("change needs", 200, lambda c, h: c.patch(
        "/compounds/c1/households/h1/residents/r1/needs", json={"bedridden": True}, headers=h)),
    ("choose representative", 200, lambda c, h: c.post(
        "/compounds/c1/households/h1/representative", json={"resident": "r2"}, headers=h)),
    ("move", 200, lambda c, h: c.post(
        "/compounds/c1/households/h1/residents/r2/move", json={"to_household": "h2"}, headers=h)),
    ("correct identity", 200, lambda c, h: c.put(
        "/compounds/c1/households/h1/residents/r1/identity", json={"name": "张叁"}, headers=h)),
    ("list households", 200, lambda c, h: c.get("/compounds/c1/buildings/b1/households", headers=h)),
    ("reveal households", 200, lambda c, h: c.get(
        "/compounds/c1/buildings/b1/households", params={"reveal": True}, headers=h)),
    ("get resident", 200, lambda c, h: c.get("/compounds/c1/residents/r1", headers=h)),
    ("reveal resident", 200, lambda c, h: c.get("/compounds/c1/residents/r1", params={"reveal": True}, headers=h)),
    ("identity reads", 200, lambda c, h: c.get("/compounds/c1/identity-reads", headers=h)),
    ("import", 200, lambda c, h: c.post(
        "/compounds/c1/import", params={"kind": "buildings"}, content=BUILDINGS_CSV,
        headers={**h, "content-type": "text/csv"})),
    ("erase", 204, lambda c, h: c.delete("/compounds/c1/residents/r3", headers=h)),
]  # fmt: skip
ALL_OPERATIONS = {name for name, _, _ in OPERATIONS}
READS = {"list households", "get resident"}
OFFICER = ALL_OPERATIONS - {"register building", "identity reads", "import", "erase"}


@pytest.mark.parametrize(
    ("role", "compound", "buildings", "allowed"),
    [
        (r.COMMITTEE_STAFF, "c1", None, ALL_OPERATIONS),
        (r.DISTRICT_OPERATOR, None, None, ALL_OPERATIONS),
        (r.INFORMATION_OFFICER, "c1", ["b1"], OFFICER),
        (r.INFORMATION_OFFICER, "c1", ["b2"], {"list buildings"}),  # another building's officer
        (r.LOGISTICS_VOLUNTEER, "c1", ["b1"], {"list buildings", *READS}),
        (r.LOGISTICS_VOLUNTEER, "c1", ["b2"], {"list buildings"}),
        (r.SAMPLING_VOLUNTEER, "c1", ["b1"], {"list buildings"}),
        (r.EXTERNAL_CONSUMER, "c1", None, set()),
        (r.COMMITTEE_STAFF, "c2", None, set()),  # another compound's staff
        (r.DISTRICT_OPERATOR, "c2", None, set()),
    ],
    ids=[
        "staff",
        "operator",
        "officer-own-building",
        "officer-other-building",
        "logistics-own-building",
        "logistics-other-building",
        "sampling-volunteer",
        "external-consumer",
        "staff-other-compound",
        "operator-scoped-to-other-compound",
    ],
)
def test_role_boundaries_of_every_route(residents, role: str, compound: str | None, buildings, allowed) -> None:
    seed(residents)
    headers = residents.key(role, compound, buildings)
    for name, success, call in OPERATIONS:
        response = call(residents.client, headers)
        if name in allowed:
            assert response.status_code == success, f"{name}: {response.text}"
        else:
            assert response.status_code == 403, f"{name}: {response.status_code} {response.text}"
            assert response.headers["content-type"] == PROBLEM


def test_unknown_or_missing_key_is_401_everywhere(residents) -> None:
    seed(residents)
    for headers in ({"X-API-Key": "jw_nope_nope"}, {"X-API-Key": "not a key"}, {}):
        for name, _, call in OPERATIONS:
            response = call(residents.client, headers)
            assert response.status_code == 401, name
            assert response.headers["content-type"] == PROBLEM


def test_logistics_volunteers_get_no_id_numbers_and_masked_phones(residents) -> None:
    seed(residents)
    logistics = residents.key(r.LOGISTICS_VOLUNTEER, "c1", ["b1"])
    households = residents.client.get("/compounds/c1/buildings/b1/households", headers=logistics).json()["households"]
    members = [m for h in households for m in h["members"]]
    assert len(members) == 3 and all("id_number" not in m for m in members)
    assert [m["phone"] for m in members] == ["138****8000", "139****9000", None]
    # No health grant (issue 15): the health flags are left out, what age says stays.
    assert members[0]["name"] == "张*" and "regular_medication" not in members[0] and "elderly" in members[0]
    assert not {"regular_medication", "mobility_impaired", "bedridden", "pregnant"} & {k for m in members for k in m}
    one = residents.client.get("/compounds/c1/residents/r1", headers=logistics).json()
    assert "id_number" not in one and one["phone"] == "138****8000" and "regular_medication" not in one
    refused = residents.client.get("/compounds/c1/residents/r1", params={"reveal": True}, headers=logistics)
    assert _problem(refused, 403)["type"] == "urn:juwei:problem:reveal-forbidden"
    with residents.runtime.database.reading() as session:
        assert session.execute(select(func.count()).select_from(sensitive_reads_table)).scalar() == 0


def test_staff_keys_naming_buildings_read_and_edit_only_those_buildings(residents) -> None:
    seed(residents)
    mine = residents.key(r.COMMITTEE_STAFF, "c1", ["b2"])
    # Issue 15 decided: a staff key limited to some buildings reads only their register (it read all before).
    other = residents.client.get("/compounds/c1/buildings/b1/households", headers=mine)
    assert _problem(other, 403)["detail"] == "this key may not act on building b1 of compound c1"
    assert _problem(residents.client.get("/compounds/c1/residents/r1", headers=mine), 403)
    assert residents.client.get("/compounds/c1/buildings/b2/households", headers=mine).status_code == 200
    assert residents.client.get("/compounds/c1/buildings", headers=mine).status_code == 200  # the list stays
    refused = residents.client.patch(
        "/compounds/c1/households/h1/residents/r1/needs", json={"bedridden": True}, headers=mine
    )
    assert _problem(refused, 403)["detail"] == "this key may not act on building b1 of compound c1"
    into_b1 = residents.client.post("/compounds/c1/households/h3/residents", json=resident_body("r8"), headers=mine)
    assert into_b1.status_code == 201  # h3 is in b2
    away = residents.client.post(
        "/compounds/c1/households/h3/residents/r8/move", json={"to_household": "h1"}, headers=mine
    )
    assert _problem(away, 403)["detail"].endswith("building b1 of compound c1")  # moving in edits b1 too


def test_openapi_documents_the_register_with_examples(residents) -> None:
    spec = residents.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for model in ("BuildingIn", "HouseholdIn", "ResidentIn", "IdentityIn", "NeedsPatch", "ResidentOut", "ImportOut"):
        assert schemas[model].get("examples"), model
    body = spec["paths"]["/compounds/{compound}/import"]["post"]["requestBody"]["content"]
    assert {"text/csv", "multipart/form-data"} <= set(body)
    erase = spec["paths"]["/compounds/{compound}/residents/{resident}"]["delete"]
    assert "204" in erase["responses"] and "403" in erase["responses"]
