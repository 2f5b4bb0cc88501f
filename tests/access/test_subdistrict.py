"""Issue 21's subdistrict tier: a subdistrict's key sees exactly the compounds registered in its subdistrict, on
every service's feed and SSE stream, on the HTTP APIs and in the console's overview; the rest is refused with a
problem in Chinese, and nothing is written.

Compounds: c1 (``tests.access.seed``: something of everything) and c3 in subdistrict s1, c2 in s2; c2 and c3
each get a zone decision, an antigen round and (c2) a medicine request, so every feed has something of each.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from console.app import create_app as create_console
from console.runtime import ConsoleRuntime
from console.services_client import ServiceClient, ServiceProblem
from console.settings import ConsoleSettings
from console.subdistrict import gather_subdistrict
from contracts import roles as r
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.store import events_table
from juwei.subdistricts import compounds_of
from services.residents.domain import IMPORT_COLUMNS
from tests.access.seed import Seeded, seed
from tests.access.test_feed_access import pages, stream
from tests.access.test_keys import _cli
from tests.access.world import SERVICES, World, as_csv, building_rows, resident_rows
from tests.conftest import both_databases

# What the subdistrict office reads of each feed (the README's table); notify: nothing (403).
TYPES = {
    "residents": {"ZoneStatusChanged", "CompoundRegistered", "CompoundZoneRulesSet"},
    "supplies": {"CardCollected", "CardHandedOver", "MedicinePurchased", "MedicineAndCardReturned", "CardOverdue",
                 "MedicineRequested"},
    "testing": {"RoundScheduled"},
}  # fmt: skip
PLACES = {"c1": "s1", "c3": "s1", "c2": "s2"}


def subdistrict_key(world: World, subdistrict: str) -> str:
    """The subdistrict office's key in every service, as ``juwei keys create --subdistrict`` stores it."""
    key: str | None = None
    for runtime in world.runtimes.values():
        with runtime.database.unit_of_work() as session:
            holder = Holder("official", f"{subdistrict} 王主任")
            key = issue_key(session, r.SUBDISTRICT_STAFF, None, key=key, holder=holder, subdistrict=subdistrict).key
    assert key is not None
    return key


def _small_compound(world: World, compound: str, medicine: bool) -> None:
    base = f"/compounds/{compound}"
    world.ok("residents", "POST", f"{base}/zones/decisions", json={"zone": "controlled", "reason": "区通知 第5号"})
    world.ok("testing", "POST", f"{base}/rounds",
             json={"round": "A1", "kind": "antigen", "starts_at": "2022-04-12T08:00"})  # fmt: skip
    if medicine:
        world.ok("residents", "POST", f"{base}/import", params={"kind": "buildings"},
                 content=as_csv(building_rows(1, 4, 2), ("building", "number", "floors", "rooms_per_floor", "lifts",
                                                         "lift_capacity")),
                 headers={"content-type": "text/csv"})  # fmt: skip
        rows = resident_rows(1, 2, 2)
        world.ok("residents", "POST", f"{base}/import", params={"kind": "residents"},
                 content=as_csv(rows, IMPORT_COLUMNS), headers={"content-type": "text/csv"})  # fmt: skip
        world.pump()
        world.ok("supplies", "POST", f"{base}/medicine-requests",
                 json={"request": "m1", "resident": str(rows[0]["resident"]), "medicine": "二甲双胍 0.5g",
                       "quantity": "1 box", "hospital": "华山医院"})  # fmt: skip


@pytest.fixture
def town(new_database, tmp_path: Path) -> Iterator[tuple[World, Seeded]]:
    world = World(tmp_path / "data", {s: new_database(s) for s in SERVICES}, rate_limit_per_second=0)
    try:
        seeded = seed(world)
        _small_compound(world, "c2", medicine=True)
        _small_compound(world, "c3", medicine=False)
        for compound, subdistrict in PLACES.items():
            answer = world.ok("residents", "PUT", f"/compounds/{compound}/registration",
                              json={"subdistrict": subdistrict, "name": f"{compound} 小区"})  # fmt: skip
            assert answer["subdistrict"] == subdistrict
        world.pump()
        yield world, seeded
    finally:
        world.close()


def _ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


def _count(world: World) -> dict[str, int]:
    counts = {}
    for name, runtime in world.runtimes.items():
        with runtime.database.reading() as session:
            counts[name] = session.execute(select(func.count()).select_from(events_table)).scalar_one()
    return counts


@both_databases
def test_a_subdistrict_key_sees_exactly_its_compounds(town: tuple[World, Seeded]) -> None:
    world, _ = town
    made = _cli(world, "create", "--role", r.SUBDISTRICT_STAFF, "--official", "s1 王主任", "--subdistrict", "s1")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    for wrong in (("--role", r.SUBDISTRICT_STAFF, "--official", "x", "--subdistrict", "s1", "--compound", "c1"),
                  ("--role", r.DISTRICT_OPERATOR, "--official", "x", "--subdistrict", "s1")):  # fmt: skip
        refused = _cli(world, "create", *wrong)
        assert refused.returncode != 0 and "subdistrict" in refused.stderr
    listed = _cli(world, "list")
    assert "(subdistrict s1)" in listed.stdout
    for runtime in world.runtimes.values():  # every service learnt the register from residents' events
        with runtime.database.reading() as session:
            assert compounds_of(session, "s1") == {"c1", "c3"} and compounds_of(session, "s2") == {"c2"}

    # The feeds and the SSE streams: the office's types, of c1 and c3, and nothing else.
    for service in SERVICES:
        status, mine = pages(world, service, key)
        if service not in TYPES:
            assert status == 403
            continue
        truth = pages(world, service, world.operator, limit=1000)[1]
        wanted = [e for e in truth if e["compound"] in ("c1", "c3") and e["type"].split(".")[2] in TYPES[service]]
        assert status == 200 and _ids(mine) == _ids(wanted), service
        seen = {e["compound"] for e in mine}
        assert seen == ({"c1"} if service == "supplies" else {"c1", "c3"}), f"{service}: s1's compounds, no other"
        assert any(e["compound"] == "c2" and e["type"].split(".")[2] in TYPES[service] for e in truth), service
        streamed_status, streamed = asyncio.run(stream(world, service, key, len(wanted)))
        assert streamed_status == 200 and _ids(streamed) == _ids(wanted), f"{service} stream"

    # The HTTP APIs: reads and writes in its compounds, 403 in Chinese elsewhere, nothing written.
    chinese = {"Accept-Language": "zh-CN"}
    assert world.request("residents", "GET", "/compounds/c3/zones", key).status_code == 200
    assert world.request("supplies", "GET", "/compounds/c1/medicine/outstanding", key).status_code == 200
    assert world.request("testing", "GET", "/compounds/c1/case-counts", key).json()["total"] == 1
    before = _count(world)
    for service, method, path, body in (
        ("residents", "GET", "/compounds/c2/zones", None),
        ("testing", "GET", "/compounds/c2/case-counts", None),
        ("supplies", "GET", "/compounds/c2/medicine/outstanding", None),
        ("supplies", "POST", "/compounds/c2/medicine-requests/m1/purchase", {"buyer": {"kind": "subdistrict",
                                                                                       "id": "sd-wang"}}),
    ):  # fmt: skip
        answer = world.request(service, method, path, key, json=body, headers=chinese)
        assert answer.status_code == 403, (service, path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "c2" in answer.json()["detail"] and "街道" in answer.json()["detail"], answer.json()
    listed = world.request("residents", "GET", "/subdistricts/s1/compounds", key).json()
    assert [c["compound"] for c in listed["compounds"]] == ["c1", "c3"]
    other = world.request("residents", "GET", "/subdistricts/s2/compounds", key, headers=chinese)
    assert other.status_code == 403 and "s2" in other.json()["detail"] and "街道" in other.json()["detail"]
    # A subdistrict office may not register compounds or set their rules (staff and the district do).
    for path, body in (("/compounds/c1/registration", {"subdistrict": "s1", "name": "x"}),
                       ("/compounds/c1/zone-rules", {"sealed_days": 3, "precaution_days": 5})):  # fmt: skip
        assert world.request("residents", "PUT", path, key, json=body).status_code == 403
    assert _count(world) == before

    # A compound registered in s1 later is reached at once; one moved away is not.
    world.ok("residents", "PUT", "/compounds/c2/registration", json={"subdistrict": "s1", "name": "c2 小区"})
    world.pump()
    assert world.request("supplies", "GET", "/compounds/c2/medicine/outstanding", key).status_code == 200
    world.ok("residents", "PUT", "/compounds/c2/registration", json={"subdistrict": "s2", "name": "c2 小区"})
    world.pump()
    assert world.request("supplies", "GET", "/compounds/c2/medicine/outstanding", key).status_code == 403


def _client(world: World, key: str) -> ServiceClient:
    """The console's client, reaching the services' apps in this process (over ASGI instead of sockets)."""
    mounts = {f"http://{name}": httpx.ASGITransport(app=client.app) for name, client in world.clients.items()}
    http = httpx.AsyncClient(mounts=mounts)
    return ServiceClient(http, {name: f"http://{name}" for name in SERVICES}, key)


@both_databases
def test_the_overview_shows_a_subdistricts_compounds_side_by_side(town: tuple[World, Seeded]) -> None:
    world, _ = town
    key = subdistrict_key(world, "s1")
    world.ok("residents", "PUT", "/compounds/c3/zone-rules", json={"sealed_days": 10, "precaution_days": 21})

    async def gather(subdistrict: str, key: str) -> dict[str, Any]:
        client = _client(world, key)
        try:
            return await gather_subdistrict(client, subdistrict)
        finally:
            await client.http.aclose()

    overview = asyncio.run(gather("s1", key))
    rows = {row["compound"]: row for row in overview["compounds"]}
    assert list(rows) == ["c1", "c3"]
    assert all(row["missing"] == [] for row in rows.values()), overview
    c1, c3 = rows["c1"], rows["c3"]
    assert c1["zones"]["buildings"]["sealed"] >= 1  # seed's case sealed its building
    assert c1["cases"]["confirmed"] == 1 and c3["cases"] == dict.fromkeys(c3["cases"], 0)
    assert c1["medicine"]["open_requests"] == 1 and c3["medicine"]["open_requests"] == 0
    assert {c1["latest_round"]["round"], c3["latest_round"]["round"]} <= {"R1", "A1"}
    assert c3["zones"]["compound"] == "controlled"
    assert c3["zone_rules"] == {"sealed_days": 10, "precaution_days": 21, "own": True}
    assert c1["zone_rules"]["own"] is False
    with pytest.raises(ServiceProblem) as refused:
        asyncio.run(gather("s2", key))
    assert refused.value.status == 403

    # The console's route: the same overview for the key in X-API-Key, the services' refusal passed on.
    settings = ConsoleSettings(
        database_url=f"sqlite:///{world.settings.data_dir / 'console.db'}",
        secret=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        service_urls={name: f"http://{name}" for name in SERVICES},
    )
    console = ConsoleRuntime.build(settings)
    console.open_http = lambda: _client(world, key).http  # type: ignore[method-assign]
    with TestClient(create_console(runtime=console)) as client:
        answer = client.get("/api/subdistricts/s1/overview", headers={"X-API-Key": key})
        assert answer.status_code == 200, answer.text
        assert [row["compound"] for row in answer.json()["compounds"]] == ["c1", "c3"]
        refused = client.get("/api/subdistricts/s2/overview", headers={"X-API-Key": key, "Accept-Language": "zh-CN"})
        assert refused.status_code == 403 and "街道" in refused.json()["detail"]
        assert client.get("/api/subdistricts/s1/overview").status_code == 401
    console.database.dispose()
