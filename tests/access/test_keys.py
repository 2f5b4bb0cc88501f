"""Keys belong to someone: ``juwei keys create`` takes the person (registered) or the system, an event's actor
resolves to them, a volunteer stood down loses every key at once, and sensitive reads are accounted for.

Misuse: a key used outside its grant gets 403 with a problem that says why, each refusal is counted per key
in the metrics, and a refused write leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from contracts import roles as r
from juwei.auth import api_keys_table, revoke_key
from juwei.callers import Holder
from juwei.store import events_table
from services.testing.views import key_bindings
from tests.access.seed import C, Seeded, seed
from tests.access.world import PROBLEM, SERVICES, World
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Seeded]]:
    tmp = tmp_path_factory.mktemp("keys")
    made = World(tmp / "data", {s: f"sqlite:///{tmp / s}.db" for s in SERVICES}, rate_limit_per_second=0)
    seeded = seed(made)
    yield made, seeded
    made.close()


def _cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JUWEI_DATA_DIR=str(world.settings.data_dir), COLUMNS="300",
               JUWEI_TODAY=str(world.settings.today), JUWEI_KAFKA_BOOTSTRAP="127.0.0.1:1")  # fmt: skip
    for service, runtime in world.runtimes.items():
        env[f"JUWEI_{service.upper()}_DATABASE_URL"] = runtime.database.url
    return subprocess.run([sys.executable, "-m", "juwei.cli", "keys", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _holder_everywhere(world: World, key: str) -> set[tuple[str | None, str | None, str | None]]:
    found = set()
    for runtime in world.runtimes.values():
        with runtime.database.reading() as session:
            row = session.execute(select(api_keys_table).where(api_keys_table.c.id == key.split("_")[1])).mappings()
            found.update((x["holder_kind"], x["holder"], x["buildings"]) for x in row)
    return found


def test_keys_create_names_a_registered_person_or_a_system_and_refuses_anyone_else(
    world: tuple[World, Seeded],
) -> None:
    made, _seeded = world
    made.ok("residents", "PUT", f"{C}/staff/s-wang/buildings", json={"buildings": ["b1", "b2"]})
    made.pump()  # the seed's case reaches residents: zones change
    nobody = _cli(made, "create", "--role", r.COMMITTEE_STAFF, "--compound", "c1")
    assert nobody.returncode == 2 and "name whom the key is for" in nobody.stderr
    wrong_kind = _cli(made, "create", "--role", r.COMMITTEE_STAFF, "--compound", "c1", "--volunteer", "ob1")
    assert wrong_kind.returncode == 2 and "committee-staff key is issued to a staff" in wrong_kind.stderr
    stranger = _cli(made, "create", "--role", r.COMMITTEE_STAFF, "--compound", "c1", "--staff", "s-nobody")
    assert stranger.returncode == 1 and "not registered" in stranger.stderr

    staff = _cli(made, "create", "--role", r.COMMITTEE_STAFF, "--compound", "c1", "--staff", "s-wang",
                 "--buildings", "b1,b2")  # fmt: skip
    assert staff.returncode == 0, staff.stderr
    key = staff.stdout.strip()
    assert _holder_everywhere(made, key) == {("staff", "c1:s-wang", '["b1", "b2"]')}
    # A volunteer's key names their building unless told otherwise.
    officer = _cli(made, "create", "--role", r.INFORMATION_OFFICER, "--compound", "c1", "--volunteer", "ob2")
    assert officer.returncode == 0, officer.stderr
    assert _holder_everywhere(made, officer.stdout.strip()) == {("volunteer", "c1:ob2", '["b2"]')}
    system = _cli(made, "create", "--role", r.EXTERNAL_CONSUMER, "--system", "subdistrict dashboard",
                  "--grant-types", "juwei.residents.ZoneStatusChanged", "--grant-compounds", "c1")  # fmt: skip
    assert system.returncode == 0, system.stderr
    reader = system.stdout.strip()
    zones = made.request("residents", "GET", "/events", reader, params={"limit": 1000}).json()["events"]
    assert zones and {e["type"] for e in zones} == {"juwei.residents.ZoneStatusChanged.v1"}
    listed = _cli(made, "list")
    assert listed.returncode == 0 and "staff:c1:s-wang" in listed.stdout and "system:subdistrict" in listed.stdout

    # The events a key causes resolve to the person holding it.
    before = made.ok("residents", "GET", f"{C}/volunteers")["volunteers"]
    made.ok("residents", "POST", f"{C}/volunteers", key, json={"volunteer": "v-new", "building": "b1"})
    assert len(made.ok("residents", "GET", f"{C}/volunteers")["volunteers"]) == len(before) + 1
    with made.runtimes["residents"].database.reading() as session:
        event = session.execute(select(events_table.c.id).order_by(events_table.c.position.desc()).limit(1)).scalar()
    actor = made.ok("residents", "GET", f"{C}/events/{event}/actor")
    assert (actor["actor"], actor["holder_kind"], actor["holder"], actor["role"]) == (
        key.split("_")[1],
        "staff",
        "c1:s-wang",
        r.COMMITTEE_STAFF,
    )
    assert made.request("residents", "GET", f"/compounds/c2/events/{event}/actor", made.operator).status_code == 404
    elsewhere = made.key(r.COMMITTEE_STAFF, "c1", ["b2"], label="staff of b2")
    refused = made.request("residents", "GET", f"{C}/events/{event}/actor", elsewhere)
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM


def test_a_volunteer_stood_down_loses_every_key_at_once(world: tuple[World, Seeded]) -> None:
    made, _seeded = world
    made.ok("residents", "POST", f"{C}/volunteers", json={"volunteer": "v-leaving", "building": "b1"})
    made.ok("residents", "PUT", f"{C}/buildings/b1/roles/v-leaving", json={"role": "sampling_point"})
    made.pump()
    key = made.key(r.LOGISTICS_VOLUNTEER, "c1", ["b1"], holder=Holder("volunteer", "c1:v-leaving"))
    point = made.ok("testing", "POST", f"{C}/points/p1/keys", json={"volunteer": "v-leaving"})
    assert point["volunteer"] == "v-leaving"
    for service in SERVICES:
        assert made.request(service, "GET", "/events", key, params={"limit": 1}).status_code in (200, 403)
        assert made.request(service, "GET", "/healthz").status_code == 200
    assert made.request("testing", "GET", f"{C}/rounds", point["key"]).status_code == 200

    gone = made.ok("residents", "DELETE", f"{C}/volunteers/v-leaving", params={"reason": "moved away"})
    assert gone == {"volunteer": "v-leaving", "building": "b1", "released": ["sampling_point"], "stood_down": True}
    # In residents at once (same transaction); in the others as soon as the event reaches them.
    assert made.request("residents", "GET", f"{C}/buildings", key).status_code == 401
    made.pump()
    for service in SERVICES:
        assert made.request(service, "GET", "/events", key).status_code == 401, service
    assert made.request("testing", "GET", f"{C}/rounds", point["key"]).status_code == 401
    team = made.ok("residents", "GET", f"{C}/buildings/b1/roles")
    assert "v-leaving" not in team["sampling_point"]
    again = made.request("residents", "DELETE", f"{C}/volunteers/v-leaving", made.operator)
    assert again.status_code == 409 and again.json()["type"] == "urn:juwei:problem:volunteer-stood-down"
    no_key = made.request("testing", "POST", f"{C}/points/p1/keys", made.operator, json={"volunteer": "v-leaving"})
    assert no_key.status_code == 422 and "stood down" in no_key.json()["detail"]
    refused = _cli(made, "create", "--role", r.LOGISTICS_VOLUNTEER, "--compound", "c1", "--volunteer", "v-leaving")
    assert refused.returncode == 1 and "stood down" in refused.stderr
    invite = {"role": r.LOGISTICS_VOLUNTEER, "holder": {"kind": "volunteer", "id": "v-leaving"}}
    over_http = made.request("residents", "POST", f"{C}/keys", made.operator, json=invite)
    assert over_http.status_code == 422 and "stood down" in over_http.json()["detail"], over_http.text


def test_staff_invite_over_http_only_people_of_the_register_with_their_building(world: tuple[World, Seeded]) -> None:
    made, _seeded = world
    made.ok("residents", "POST", f"{C}/volunteers", json={"volunteer": "v-invited", "building": "b2"})
    staff = made.key(r.COMMITTEE_STAFF, "c1")
    invite = {"role": r.LOGISTICS_VOLUNTEER, "holder": {"kind": "volunteer", "id": "v-invited"}}
    issued = made.request("residents", "POST", f"{C}/keys", staff, json=invite)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["buildings"] == ["b2"] and body["holder"] == {"kind": "volunteer", "id": "c1:v-invited"}
    # The console stores the same key in the other services, naming the buildings residents chose.
    for service in SERVICES[1:]:
        again = made.request(
            service, "POST", f"{C}/keys", staff, json={**invite, "key": body["key"], "buildings": ["b2"]}
        )
        assert again.status_code == 201 and again.json()["key_id"] == body["key_id"], again.text
        assert made.request(service, "GET", "/whoami", body["key"]).json()["buildings"] == ["b2"]
    stranger = {"role": r.HOUSEHOLD, "holder": {"kind": "household", "id": "h9-9999"}}
    unknown = made.request("residents", "POST", f"{C}/keys", staff, json=stranger)
    assert unknown.status_code == 422 and "not registered" in unknown.json()["detail"]
    # In testing a household's key speaks for its own household, bound as testing's own household keys are.
    household = {"role": r.HOUSEHOLD, "holder": {"kind": "household", "id": "h1-0101"}, "buildings": ["b1"]}
    issued_household = made.request("testing", "POST", f"{C}/keys", staff, json=household)
    assert issued_household.status_code == 201, issued_household.text
    with made.runtimes["testing"].database.reading() as session:
        bound = session.execute(
            select(key_bindings.c.household).where(key_bindings.c.key_id == issued_household.json()["key_id"])
        ).scalar()
    assert bound == "c1:h1-0101"
    # Supplies does not keep the register: it takes whom committee staff vouch for.
    assert (
        made.request("supplies", "POST", f"{C}/keys", staff, json={**stranger, "buildings": ["b1"]}).status_code == 201
    )


def test_a_key_used_outside_its_grant_gets_a_problem_that_says_why_is_counted_and_writes_nothing(
    world: tuple[World, Seeded],
) -> None:
    made, _seeded = world
    logistics = made.key(r.LOGISTICS_VOLUNTEER, "c1", ["b1"], label="logistics of b1")
    key_id = logistics.split("_")[1]
    heads = {s: _head(made, s) for s in SERVICES}
    answers = [
        made.request(
            "residents",
            "POST",
            f"{C}/buildings",
            logistics,
            json={"building": "b9", "number": "9", "floors": 6, "rooms_per_floor": 4, "lifts": 1, "lift_capacity": 8},
        ),
        made.request("residents", "GET", f"{C}/buildings/b2/households", logistics),
        made.request("testing", "GET", "/events", logistics),
        made.request("residents", "GET", f"{C}/residents/r1", logistics, params={"reveal": "true"}),
    ]
    assert [a.status_code for a in answers] == [403, 403, 200, 403]
    assert {s: _head(made, s) for s in SERVICES} == heads  # nothing half-written
    refused = [a for a in answers if a.status_code == 403]
    assert all(a.headers["content-type"] == PROBLEM for a in refused)
    details = [a.json()["detail"] for a in refused]
    assert "role logistics-volunteer may not do this" in details[0]
    assert details[1] == "this key may not act on building b2 of compound c1"
    assert "may not see identities unmasked" in details[2]
    sampler = made.key(r.SAMPLING_VOLUNTEER, "c1", point="p1", label="sampler p1")
    notify = made.request("notify", "GET", "/events", sampler)
    assert notify.status_code == 403 and "needs no events of notify" in notify.json()["detail"]
    metrics = made.request("residents", "GET", "/metrics").text
    refusals = {
        (sample.labels["service"], sample.labels["key"], sample.labels["role"]): sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "juwei_forbidden"
        for sample in family.samples
        if sample.name == "juwei_forbidden_total"
    }
    assert refusals[("residents", key_id, r.LOGISTICS_VOLUNTEER)] == 3.0


def test_sensitive_reads_say_who_what_and_why_and_are_listed_for_staff(world: tuple[World, Seeded]) -> None:
    made, seeded = world
    officer = made.key(r.INFORMATION_OFFICER, "c1", ["b1"], label="ob1")
    person = seeded.households["h1-0102"][0]
    why = {"X-Juwei-Purpose": quote("配药登记 / medicine survey")}
    made.ok("residents", "GET", f"{C}/residents/{person}", officer, params={"reveal": "true"}, headers=why)
    reads = made.ok("residents", "GET", f"{C}/sensitive-reads", params={"subject": person, "limit": 1000})["reads"]
    mine = [read for read in reads if read["key_id"] == officer.split("_")[1]]
    assert {(read["kind"], read["purpose"], read["holder"]) for read in mine} == {
        ("identity", "配药登记 / medicine survey", "volunteer:c1:ob1"),
        ("health", "配药登记 / medicine survey", "volunteer:c1:ob1"),
    }
    assert {tuple(read["fields"]) for read in mine} == {
        ("name", "phone", "id_number"),
        ("regular_medication", "mobility_impaired", "bedridden", "pregnant"),
    }
    assert made.request("residents", "GET", f"{C}/residents/{person}", officer,
                        headers={"X-Juwei-Purpose": "why " * 60}).status_code == 400  # fmt: skip
    # Prescriptions shown by supplies are health reads too, listed by supplies.
    made.ok("supplies", "GET", f"{C}/buildings/b1/medicine-requests", officer)
    prescriptions = made.ok("supplies", "GET", f"{C}/sensitive-reads", params={"kind": "health"})["reads"]
    assert prescriptions and all(read["fields"] == ["prescription"] for read in prescriptions)
    # Staff of another building do not account for b1's reads; volunteers list nothing.
    b2 = made.key(r.COMMITTEE_STAFF, "c1", ["b2"], label="staff of b2 (reads)")
    assert made.ok("residents", "GET", f"{C}/sensitive-reads", b2, params={"subject": person})["reads"] == []
    assert made.request("residents", "GET", f"{C}/sensitive-reads", officer).status_code == 403
    # A seq beyond 64 bits is the reader's mistake, answered as a problem on every service, and on identity reads.
    for service, path in [(s, f"{C}/sensitive-reads") for s in made.clients] + [("residents", f"{C}/identity-reads")]:
        huge = made.request(service, "GET", path, made.operator, params={"after": 2**63})
        assert huge.status_code == 422 and huge.headers["content-type"] == "application/problem+json", (service, path)
        assert made.request(service, "GET", path, made.operator, params={"after": 2**63 - 1}).json()["reads"] == []


def _head(world: World, service: str) -> int:
    runtime = world.runtimes[service]
    with runtime.database.reading() as session:
        return runtime.store.head(session)


def test_migrated_keys_keep_working_and_are_marked_as_a_systems(tmp_path: Path) -> None:
    """Keys made before holders existed: after the migration they name a system (their label) and still open."""
    from alembic import command

    from juwei.database import Database
    from juwei.migrate import alembic_config

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "juwei_0002")
    with database.engine.begin() as connection:
        connection.execute(
            api_keys_table.insert().values(
                id="0123456789abcdef",
                secret_hash="0" * 64,
                role=r.COMMITTEE_STAFF,
                compound="c1",
                label="Wang, staff",
                created_at=datetime.now(UTC),
            )
        )
        config.attributes["connection"] = connection
        command.upgrade(config, "juwei_0003")
    with database.engine.connect() as connection:
        row = connection.execute(select(api_keys_table.c.holder_kind, api_keys_table.c.holder)).one()
    assert tuple(row) == ("system", "Wang, staff")
    database.dispose()


GIVE_UP = 120  # below the test's own 300 s limit, so a stream that never ends fails here, saying so


def test_an_open_stream_ends_when_its_key_is_revoked(world: tuple[World, Seeded]) -> None:
    from tests.access.test_feed_access import stream

    made, _seeded = world
    key = made.key(r.COMMITTEE_STAFF, "c1", label="staff who leaves")

    async def watch_then_revoke() -> tuple[int, list, float]:
        started = asyncio.get_running_loop().time()
        # The reader never stops by itself (10**6 events): only the server's end of the stream comes before give_up.
        watching = asyncio.create_task(stream(made, "residents", key, wanted=10**6, settle=0, give_up=GIVE_UP))
        await asyncio.sleep(1.0)
        with made.runtimes["residents"].database.unit_of_work() as session:
            assert revoke_key(session, key.split("_")[1])
        status, events = await watching
        return status, events, asyncio.get_running_loop().time() - started

    status, events, took = asyncio.run(watch_then_revoke())
    assert status == 200 and events  # it was streaming the compound's events
    # The server checks the key every 5 s; the limit is for a stream that never ends, not a speed.
    assert took < GIVE_UP, "the stream went on after its key was revoked"
    assert made.request("residents", "GET", "/events/stream", key).status_code == 401
