"""Privacy in the four services together: erasure leaves no identity anywhere, retention leaves only counts.

Crypto-shredding: once a resident is erased, no GET route of any service (revealed or not), no page of any
service's feed and no read model rebuilt from zero shows their name, phone, ID number or prescription.

Retention: ``juwei retention <compound>`` (the real command, as a process) is refused while the compound is
still locked down; once it is over it shreds every subject key of the compound in every vault, blanks or
deletes per-person health rows, keeps the aggregate figures, leaves other compounds alone, and a rebuild of
every read model from zero does not bring anything back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from juwei.vault import subject_keys_table
from services.residents.domain import IMPORT_COLUMNS
from tests.access.seed import C, Seeded, png, seed
from tests.access.test_matrix import CASES, Ctx, key_specs, routes
from tests.access.world import SERVICES, World, as_csv, building_rows, resident_rows
from tests.conftest import ROOT

PRESCRIPTION = "阿托伐他汀钙片 20mg"


def _identity(row: dict[str, Any]) -> list[str]:
    return [str(row["name"]), str(row["phone"]), str(row["id_number"])]


def _every_get(world: World, seeded: Seeded, extra: list[tuple[str, str]]) -> Iterator[tuple[str, str, str]]:
    """(service, path, body) of every GET route (as the access matrix calls it, by an operator) and ``extra``."""
    operator = key_specs()[0]
    for (service, method, path), _roles in sorted(routes(world).items()):
        if method != "GET" or path == "/readyz":  # readiness waits on the absent broker and holds no data
            continue
        req = CASES[(service, method, path)](Ctx(world, seeded, operator, fresh=False))
        if req.stream:
            continue
        answer = world.request(service, "GET", req.path, world.operator)
        yield service, req.path, answer.text
    for service, path in extra:
        yield service, path, world.request(service, "GET", path, world.operator).text


def _feeds(world: World) -> Iterator[tuple[str, str]]:
    for service in SERVICES:
        after = 0
        while True:
            page = world.ok(service, "GET", "/events", params={"after": after, "limit": 1000})
            yield service, json.dumps(page, ensure_ascii=False)
            if not page["has_more"]:
                break
            after = page["next_after"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, Seeded]]:
    made = World(tmp_path / "data", {s: f"sqlite:///{tmp_path / s}.db" for s in SERVICES}, rate_limit_per_second=0)
    seeded = seed(made)
    yield made, seeded
    made.close()


def test_an_erased_resident_is_gone_from_every_api_feed_and_replay(world: tuple[World, Seeded]) -> None:
    made, seeded = world
    person = seeded.pool.resident()
    made.ok("supplies", "POST", f"{C}/medicine-requests", json={"request": "m-erased", "resident": person,
            "medicine": PRESCRIPTION, "quantity": "1 box", "hospital": "华山医院"})  # fmt: skip
    shown = made.ok("residents", "GET", f"{C}/residents/{person}", params={"reveal": "true"})
    secrets_ = [shown["name"], shown["phone"], shown["id_number"], PRESCRIPTION, "华山医院"]
    assert all(secrets_), shown
    home = shown["household"]
    extra = [
        ("residents", f"{C}/residents/{person}?reveal=true"),
        ("residents", f"{C}/buildings/b1/households?reveal=true"),
        ("supplies", f"{C}/buildings/b1/medicine-requests"),
        ("supplies", f"{C}/cards/{person}/history"),
        ("testing", f"{C}/rounds/A1/households/{home}/antigen"),
    ]
    before = "\n".join(body for _, _, body in _every_get(made, seeded, extra))
    assert shown["name"] in before and PRESCRIPTION in before  # the scan can see them while they exist

    made.ok("residents", "DELETE", f"{C}/residents/{person}")
    made.pump()

    def leaks(texts: Iterator[tuple[str, str, str]] | Iterator[tuple[str, str]]) -> list[str]:
        return [f"{item[0]} {item[1] if len(item) == 3 else ''}: {secret}" for item in texts
                for secret in secrets_ if secret in item[-1]]  # fmt: skip

    scanned = list(_every_get(made, seeded, extra))
    assert not leaks(iter(scanned)), leaks(iter(scanned))
    assert not leaks(_feeds(made))
    replayed = {service: runtime.projector.rebuild() for service, runtime in made.runtimes.items()}
    assert all(replayed.values()), replayed
    again = list(_every_get(made, seeded, extra))
    assert not leaks(iter(again)), leaks(iter(again))
    erased = made.ok("residents", "GET", f"{C}/residents/{person}", params={"reveal": "true"})
    assert erased["erased"] is True and "name" not in erased
    for service in ("residents", "supplies"):
        with made.runtimes[service].database.reading() as session:
            assert made.runtimes[service].vault.is_shredded(session, f"c1:{person}")
    print(f"\nerasure: {len(scanned)} GET answers, the feeds of 4 services and {sum(replayed.values())} replayed "
          f"events checked for {len(secrets_)} secrets of the erased resident")  # fmt: skip


# ---------------------------------------------------------------------- retention


def _retention(world: World, compound: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JUWEI_DATA_DIR=str(world.settings.data_dir),
               JUWEI_TODAY=str(world.settings.today), JUWEI_KAFKA_BOOTSTRAP="127.0.0.1:1")  # fmt: skip
    for service, runtime in world.runtimes.items():
        env[f"JUWEI_{service.upper()}_DATABASE_URL"] = runtime.database.url
    return subprocess.run([sys.executable, "-m", "juwei.cli", "retention", compound, "--actor", "test"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


def _subjects(world: World, prefix: str) -> dict[str, int]:
    counts = {}
    for service, runtime in world.runtimes.items():
        with runtime.database.reading() as session:
            counts[service] = int(
                session.execute(
                    select(func.count()).where(subject_keys_table.c.subject.contains(prefix, autoescape=True))
                ).scalar()
                or 0
            )
    return counts


def _c2(world: World) -> list[dict[str, object]]:
    """Compound c2: 2 buildings of residents, a medicine request, a negative PCR round, antigen reports."""
    base = "/compounds/c2"
    columns = ("building", "number", "floors", "rooms_per_floor", "lifts", "lift_capacity")
    world.ok("residents", "POST", f"{base}/import", params={"kind": "buildings"},
             content=as_csv(building_rows(2, 6, 4), columns), headers={"content-type": "text/csv"})  # fmt: skip
    rows = resident_rows(2, 3, 4, start=1000)
    world.ok("residents", "POST", f"{base}/import", params={"kind": "residents"}, content=as_csv(rows, IMPORT_COLUMNS),
             headers={"content-type": "text/csv"})  # fmt: skip
    world.pump()
    world.ok("supplies", "POST", f"{base}/medicine-requests", json={"request": "m1", "resident": rows[0]["resident"],
             "medicine": PRESCRIPTION, "quantity": "2 boxes", "hospital": "华山医院"})  # fmt: skip
    world.ok("supplies", "POST", f"{base}/donations", json={"donation": "d1", "donor": "donor-1",
             "donor_name": "赵先生", "items": [{"category": "masks", "item": "kn95", "quantity": 100}]})  # fmt: skip
    world.ok("testing", "POST", f"{base}/points", json={"point": "p1", "name": "p1", "location": "gate",
                                                         "throughput": 4})  # fmt: skip
    world.ok("testing", "POST", f"{base}/assignment/proposal")
    world.ok("testing", "POST", f"{base}/rounds", json={"round": "R1", "starts_at": "2022-04-12T07:00",
                                                         "points": ["p1"]})  # fmt: skip
    people = [str(row["resident"]) for row in rows if row["building"] == "b1"]
    for n in range(0, len(people), 10):
        tube = f"T{n}"
        world.ok("testing", "POST", f"{base}/rounds/R1/samples", json={"tube": tube, "residents": people[n : n + 10],
                                                                        "point": "p1"})  # fmt: skip
        world.ok("testing", "POST", f"{base}/tubes/{tube}/result", json={"result": "negative"})
    world.ok("testing", "POST", f"{base}/rounds", json={"round": "A1", "kind": "antigen",
                                                         "starts_at": "2022-04-13T08:00"})  # fmt: skip
    home = str(rows[0]["household"])
    world.ok("testing", "POST", f"{base}/rounds/A1/households/{home}/antigen",
             data={"resident": rows[0]["resident"], "result": "negative"},
             files={"photo": ("cassette.png", png(3, 3), "image/png")})  # fmt: skip
    world.ok("notify", "POST", f"{base}/buildings/b1/questions", json={"text": "我家老人需要配药，电话13912345678"})
    world.pump()
    return rows


def test_retention_removes_identity_and_health_data_of_a_compound_whose_lockdown_is_over(
    world: tuple[World, Seeded],
) -> None:
    made, _seeded = world
    rows = _c2(made)
    c1_before = made.ok("residents", "GET", f"{C}/buildings/b1/households", params={"reveal": "true"})
    counts_before = made.ok("residents", "GET", "/compounds/c2/buildings")
    tested_before = made.ok("testing", "GET", "/compounds/c2/rounds/R1/counts")
    # Each resident has two keys in residents (identity, and the sealed health flags since issue 15); the
    # health key was handed to supplies and testing with the records (not to notify).
    held = _subjects(made, "c2:")
    assert held["residents"] == 2 * len(rows) and held["testing"] == len(rows) and held["notify"] == 0
    assert held["supplies"] == len(rows) + 2  # and one prescription and one donor's name

    refused = _retention(made, "c1")  # c1 had a case today: building b1 is sealed
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "not over" in refused.stderr and "sealed" in refused.stderr
    assert _subjects(made, "c1:")["residents"] > 0

    done = _retention(made, "c2")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["residents"]["residents"] == len(rows)
    assert report["residents"]["subject_keys_shredded"] == 2 * len(rows)
    assert report["residents"]["needs"]["regular_medication"] == sum(1 for r in rows if r["regular_medication"])
    assert report["testing"]["round_status"]["R1"] and report["testing"]["antigen_results"]["A1"] == {"negative": 1}
    assert report["supplies"]["medicine_requests"] == {"open": 1}
    assert report["notify"]["questions"] == 1

    def check_c2_is_scrubbed() -> None:
        assert _subjects(made, "c2:") == dict.fromkeys(SERVICES, 0)
        households = made.ok("residents", "GET", "/compounds/c2/buildings/b1/households", params={"reveal": "true"})
        members = [m for h in households["households"] for m in h["members"]]
        assert members and all(m.get("name") is None and m.get("phone") is None for m in members)
        assert not any(m["regular_medication"] or m["bedridden"] for m in members)
        assert made.ok("residents", "GET", "/compounds/c2/buildings") == counts_before  # the counts stay
        needs = made.ok("supplies", "GET", "/compounds/c2/buildings/b1/medicine-requests")["requests"]
        assert needs and all(n["prescription"] is None for n in needs)
        assert made.ok("supplies", "GET", "/compounds/c2/donations/d1").get("donor_name") is None
        home = str(rows[0]["household"])
        reports = made.ok("testing", "GET", f"/compounds/c2/rounds/A1/households/{home}/antigen")["members"]
        assert all(m.get("result") is None for m in reports), reports
        photos = made.settings.data_dir / "testing" / "photos" / "c2"
        assert not photos.exists() or not any(photos.iterdir())
        coverage = made.ok("testing", "GET", "/compounds/c2/rounds/R1/counts")
        assert coverage != tested_before or not tested_before["buildings"]  # per-person rows are gone
        assert made.ok("notify", "GET", "/compounds/c2/question-groups")  # the grouped question stays as a figure
        # c1 is untouched.
        assert made.ok("residents", "GET", f"{C}/buildings/b1/households", params={"reveal": "true"}) == c1_before

    check_c2_is_scrubbed()
    replayed = {service: runtime.projector.rebuild() for service, runtime in made.runtimes.items()}
    check_c2_is_scrubbed()  # a replay from zero brings nothing back
    again = _retention(made, "c2")  # running it again is harmless and keeps the first figures
    assert again.returncode == 0, again.stderr
    print(f"\nretention: {len(rows)} residents of c2 retired, {sum(replayed.values())} events replayed after it; "
          f"figures kept: {json.dumps(report, ensure_ascii=False)[:300]}")  # fmt: skip
