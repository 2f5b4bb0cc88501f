"""Webhook subscriptions of outside systems: registration and its refusals, signed deliveries in order per
building, retries and giving up, pause and resume, replay, the delivery log, and the feed's privacy rules.

A real HTTP receiver (``webhook_sink``) checks every signature from the Standard Webhooks spec.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from contracts.residents import ZoneStatusChanged
from contracts.testing import CaseConfirmed
from juwei.audit import sensitive_reads_table
from juwei.auth import issue_key, revoke_key
from juwei.callers import Grant, Holder
from juwei.commands import commands_table
from juwei.events import Envelope, new_event_id, utcnow
from services.notify.retention import scrub
from services.notify.views import subscription_deliveries, subscriptions, tables
from tests.conftest import both_databases
from tests.notify.conftest import Notify, close_notify, compound_events, envelope, make_notify, open_notify, receive
from tests.notify.webhook_sink import Sink

CASE = "juwei.testing.CaseConfirmed"
ZONE = "juwei.residents.ZoneStatusChanged"


@pytest.fixture
def notify(new_database, tmp_path) -> Iterator[Notify]:
    made = open_notify(new_database("notify"), tmp_path)
    receive(made.runtime, *compound_events("c1"))
    yield made
    close_notify(made)


@pytest.fixture
def sink() -> Iterator[Sink]:
    made = Sink().start()
    yield made
    made.stop()


def external(notify: Notify, types: list[str], compounds: list[str], health: bool = False, name: str = "dash") -> dict:
    with notify.runtime.database.unit_of_work() as session:
        grant = Grant(frozenset(types), frozenset(compounds), health)
        key = issue_key(session, "external-consumer", None, holder=Holder("system", name), grant=grant)
    return {"X-API-Key": key.key}


def register(notify: Notify, headers: dict, sink: Sink, types: list[str], compounds: list[str]) -> dict[str, Any]:
    answer = notify.client.post(
        "/subscriptions", json={"url": sink.url, "types": types, "compounds": compounds}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    sink.secret = answer.json()["secret"]
    return answer.json()


def case(building: int, n: int, compound: str = "c1") -> Envelope:
    return envelope(
        CaseConfirmed(
            case=f"{compound}:case{building}-{n}",
            resident=f"{compound}:r{building}-1",
            household=f"{compound}:h{building}-1",
            building=f"{compound}:{building}",
            confirmed_on="2022-04-10",
        ),
        compound,
        "testing",
        subject=f"case-{building}-{n}",
    )


def zone(compound: str = "c1") -> Envelope:
    change = ZoneStatusChanged(scope="compound", zone="sealed", previous="precaution", reason="x")
    return envelope(change, compound, subject=f"zone-{compound}")


def undelivered() -> float:
    labels = {"kind": "subscription", "outcome": "dead"}
    return REGISTRY.get_sample_value("notify_deliveries_undelivered_total", labels) or 0.0


def log_of(notify: Notify, headers: dict, subscription: str) -> dict[str, dict[str, Any]]:
    answer = notify.client.get(f"/subscriptions/{subscription}/deliveries?limit=1000", headers=headers)
    assert answer.status_code == 200, answer.text
    return {d["event_id"] + (d["replay"] or ""): d for d in answer.json()["deliveries"]}


@both_databases
def test_registration_refuses_bad_urls_unknown_types_and_what_the_grant_does_not_cover(
    notify: Notify, sink: Sink
) -> None:
    operator = notify.key("district-operator", None)
    for url in (
        "ftp://hooks.example.org/in",
        "http://user:secret@hooks.example.org/in",
        "https://:pw@hooks.example.org/in",
        "http:///no-host",
        "hooks.example.org/in",
        "https://hooks.example.org/a b",
        "javascript:alert(1)",
    ):
        answer = notify.client.post(
            "/subscriptions", json={"url": url, "types": [CASE], "compounds": ["c1"]}, headers=operator
        )
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["code"] in ("url-refused", "validation"), answer.json()
    good = {"url": sink.url, "compounds": ["c1"]}
    unknown = notify.client.post(
        "/subscriptions", json={**good, "types": [CASE, "juwei.testing.NoSuchThing"]}, headers=operator
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "type-unknown", unknown.text
    assert "juwei.testing.NoSuchThing" in unknown.json()["detail"]
    own = notify.client.post(
        "/subscriptions", json={**good, "types": ["juwei.notify.MessageComposed"]}, headers=operator
    )
    assert own.status_code == 422 and own.json()["code"] == "type-not-offered", own.text

    dashboard = external(notify, [CASE], ["c1"])
    outside_type = notify.client.post("/subscriptions", json={**good, "types": [ZONE]}, headers=dashboard)
    assert outside_type.status_code == 403 and outside_type.json()["code"] == "type-not-granted", outside_type.text
    outside_compound = notify.client.post(
        "/subscriptions", json={**good, "types": [CASE], "compounds": ["c2"]}, headers=dashboard
    )
    assert outside_compound.status_code == 403 and outside_compound.json()["code"] == "compound-not-granted"
    compound_operator = notify.key("district-operator", "c1")
    other = notify.client.post(
        "/subscriptions", json={**good, "types": [CASE], "compounds": ["c2"]}, headers=compound_operator
    )
    assert other.status_code == 403, other.text
    for role in ("committee-staff", "household", "information-officer"):
        refused = notify.client.post("/subscriptions", json={**good, "types": [CASE]}, headers=notify.key(role, "c1"))
        assert refused.status_code == 403, (role, refused.text)
    assert notify.client.get("/subscriptions", headers=operator).json() == []  # nothing written by a refusal

    once = {**dashboard, "Idempotency-Key": "register-dashboard-1"}
    body = {"url": sink.url, "types": [CASE], "compounds": ["c1"]}
    made = notify.client.post("/subscriptions", json=body, headers=once).json()
    again = notify.client.post("/subscriptions", json=body, headers=once)
    assert again.status_code == 200 and again.json()["replayed"] is True and "secret" not in again.text
    with notify.runtime.database.reading() as session:  # the secret is sealed, never stored in clear
        stored = session.execute(select(subscriptions.c.config)).scalars().all()
        assert len(stored) == 1 and made["secret"] not in stored[0] and "t0ken" not in stored[0]
        answers = session.execute(select(commands_table.c.response)).scalars().all()
        assert answers and not any(made["secret"] in (answer or "") for answer in answers)
    assert made["secret"].startswith("whsec_") and len(base64.b64decode(made["secret"][6:])) == 32
    assert made["health"] is False and made["active"] is True
    listed = notify.client.get("/subscriptions", headers=dashboard).json()
    assert [s["subscription"] for s in listed] == [made["subscription"]]
    assert (
        "secret" not in listed[0]
        and "t0ken" not in str(listed)
        and listed[0]["endpoint"].startswith("http://127.0.0.1:")
    )
    assert [s["subscription"] for s in notify.client.get("/subscriptions", headers=operator).json()] == [
        made["subscription"]
    ]
    stranger = external(notify, [CASE], ["c1"], name="another system")
    assert notify.client.get("/subscriptions", headers=stranger).json() == []
    assert notify.client.get(f"/subscriptions/{made['subscription']}", headers=stranger).status_code == 404
    assert notify.client.post(f"/subscriptions/{made['subscription']}/pause", headers=stranger).status_code == 404


@both_databases
def test_events_reach_the_receiver_once_signed_in_order_as_the_feed_shows_them(notify: Notify, sink: Sink) -> None:
    dashboard = external(notify, [CASE, ZONE], ["c1"])
    made = register(notify, dashboard, sink, [CASE, ZONE], ["c1"])
    wanted = [zone(), *(case(b, n) for n in (1, 2, 3) for b in (1, 2, 3))]
    unwanted = [case(1, 9, compound="c2"), *compound_events("c1", buildings=1, households=1)[:1]]
    receive(notify.runtime, *wanted[:1], *unwanted[1:])
    receive(notify.runtime, *wanted[1:], *unwanted[:1], topic="juwei.testing")
    notify.dispatcher.drain()

    got = sink.accepted()
    assert sorted(r.webhook_id for r in got) == sorted(e.id for e in wanted)  # each once, nothing else
    assert all(r.valid for r in got), [r for r in got if not r.valid]
    assert all(abs(r.timestamp - time.time()) < 300 for r in got)
    by_id = {e.id: e for e in wanted}
    for r in got:
        assert r.event["id"] == r.webhook_id and r.event["type"] == by_id[r.webhook_id].type
        assert r.event["compound"] == "c1"
        assert "resident" not in r.event["data"] and "household" not in r.event["data"]  # private: never shown
    for b in (1, 2, 3):
        lane = [r.event["data"]["case"] for r in got if r.event.get("building") == f"c1:{b}"]
        assert lane == [f"c1:case{b}-{n}" for n in (1, 2, 3)]
    log = log_of(notify, dashboard, made["subscription"])
    assert len(log) == len(wanted)
    assert all(d["status"] == "sent" and [a["status_code"] for a in d["attempts"]] == [200] for d in log.values())
    listed = notify.client.get(f"/subscriptions/{made['subscription']}", headers=dashboard).json()
    assert (listed["sent"], listed["pending"], listed["dead"]) == (len(wanted), 0, 0)


@both_databases
def test_a_failing_building_holds_only_its_own_later_events_retried_then_given_up(notify: Notify, sink: Sink) -> None:
    def answer(event: dict[str, Any], seen: int) -> int:
        if event["data"]["case"] == "c1:case1-1" and seen < 2:
            return 500  # building 1's first event fails twice, then goes
        if event["data"]["case"] == "c1:case3-1":
            return 503  # building 3's first event never goes
        return 200

    sink.answer = answer
    operator = notify.key("district-operator", None)
    made = register(notify, operator, sink, [CASE], ["c1"])
    events = [case(b, n) for n in (1, 2) for b in (1, 2, 3)]
    before = undelivered()
    receive(notify.runtime, *events, topic="juwei.testing")
    notify.dispatcher.drain()

    order = [r.event["data"]["case"] for r in sink.received]
    accepted = [r.event["data"]["case"] for r in sink.accepted()]
    assert sorted(accepted) == sorted(f"c1:case{b}-{n}" for n in (1, 2) for b in (1, 2, 3) if (b, n) != (3, 1))
    assert order.count("c1:case1-1") == 3 and order.count("c1:case3-1") == notify.dispatcher.policy.max_attempts
    # Building 1's second event waited for its first; building 2 did not wait for building 1.
    first_ok = len(order) - order[::-1].index("c1:case1-1") - 1
    assert order.index("c1:case1-2") > first_ok
    assert accepted.index("c1:case2-2") < accepted.index("c1:case1-1")
    # Building 3's first was given up after the bound, counted, and its second then went.
    assert order.index("c1:case3-2") > len(order) - order[::-1].index("c1:case3-1") - 1
    assert undelivered() - before == 1
    log = log_of(notify, operator, made["subscription"])
    by_case = {d["event_id"]: d for d in log.values()}
    first, dead = by_case[events[0].id], by_case[events[2].id]
    assert first["status"] == "sent" and [a["status_code"] for a in first["attempts"]] == [500, 500, 200]
    assert dead["status"] == "dead" and [a["status_code"] for a in dead["attempts"]] == [503] * 4
    assert dead["attempts"][-1]["outcome"] == "dead" and dead["last_code"] == "http:503"
    assert all(a["at"] and a["duration_ms"] >= 0 for a in first["attempts"])
    assert notify.client.get(f"/subscriptions/{made['subscription']}/deliveries?status=dead", headers=operator).json()[
        "deliveries"
    ] == [dead]


@both_databases
def test_pause_holds_resume_delivers_and_replay_sends_again_from_an_event_or_a_position(
    notify: Notify, sink: Sink
) -> None:
    operator = notify.key("district-operator", None)
    made = register(notify, operator, sink, [CASE], ["c1"])
    path = f"/subscriptions/{made['subscription']}"
    paused = notify.client.post(f"{path}/pause", headers=operator)
    assert paused.status_code == 200 and paused.json()["active"] is False
    events = [replace(case(1, n), position=100 + n) for n in (1, 2, 3, 4)]
    receive(notify.runtime, *events, topic="juwei.testing")
    notify.dispatcher.drain(timeout=2)
    assert sink.received == []
    assert notify.client.get(path, headers=operator).json()["pending"] == 4
    resumed = notify.client.post(f"{path}/resume", headers=operator)
    assert resumed.status_code == 200 and resumed.json()["active"] is True
    notify.dispatcher.drain()
    assert [r.webhook_id for r in sink.accepted()] == [e.id for e in events]

    again = notify.client.post(f"{path}/replay", json={"from_event": events[2].id}, headers=operator)
    assert again.status_code == 200 and again.json()["queued"] == 2, again.text
    notify.dispatcher.drain()
    replayed = sink.accepted()[4:]
    assert [r.webhook_id for r in replayed] == [e.id for e in events[2:]]  # the same webhook-id as the first time
    assert all(r.valid and r.replay == again.json()["replay"] for r in replayed)
    by_position = notify.client.post(
        f"{path}/replay", json={"service": "testing", "from_position": 102}, headers=operator
    )
    assert by_position.status_code == 200 and by_position.json()["queued"] == 3, by_position.text
    notify.dispatcher.drain()
    assert [r.webhook_id for r in sink.accepted()[6:]] == [e.id for e in events[1:]]

    for body, status, code in (
        ({}, 422, "replay-start"),
        ({"from_position": 3}, 422, "replay-start"),
        ({"from_event": "no-such-event"}, 404, "event-unknown"),
    ):
        refused = notify.client.post(f"{path}/replay", json=body, headers=operator)
        assert refused.status_code == status and refused.json()["code"] == code, refused.text
    assert (
        notify.client.post(
            f"{path}/replay", json={"from_event": "x"}, headers=external(notify, [CASE], ["c1"])
        ).status_code
        == 404
    )


def resident_registered_in_clear() -> Envelope:
    """A version-1 event: the health flags in clear (the feed shows them to health readers only)."""
    return Envelope(
        id=new_event_id(),
        source="/juwei/residents",
        type="juwei.residents.ResidentRegistered.v1",
        subject="resident-c1:r1-1",
        time=utcnow(),
        data={
            "resident": "c1:r1-1",
            "household": "c1:h1-1",
            "building": "c1:1",
            "birth_year": 1940,
            "elderly": True,
            "pregnant": True,
            "regular_medication": False,
            "mobility_impaired": False,
            "bedridden": False,
        },
        compound="c1",
        streamversion=1,
        building="c1:1",
    )


@both_databases
def test_health_fields_reach_only_a_subscriber_granted_health_and_are_audited(notify: Notify, sink: Sink) -> None:
    kind = "juwei.residents.ResidentRegistered"
    other = Sink().start()
    try:
        granted = external(notify, [kind], ["c1"], health=True, name="health bureau")
        plain = external(notify, [kind], ["c1"], name="dashboard")
        assert register(notify, granted, sink, [kind], ["c1"])["health"] is True
        assert register(notify, plain, other, [kind], ["c1"])["health"] is False
        receive(notify.runtime, resident_registered_in_clear())
        notify.dispatcher.drain()
        (health,), (without,) = sink.accepted(), other.accepted()
        assert health.valid and without.valid
        assert health.event["data"]["pregnant"] is True and health.event["data"]["elderly"] is True
        assert without.event["data"]["elderly"] is True
        assert not {"pregnant", "regular_medication", "bedridden", "mobility_impaired"} & set(without.event["data"])
        for received in (health, without):
            assert "birth_year" not in received.event["data"] and "identity" not in received.event["data"]
        with notify.runtime.database.reading() as session:
            audited = session.execute(
                select(func.count())
                .select_from(sensitive_reads_table)
                .where(sensitive_reads_table.c.subject == "c1:r1-1")
            ).scalar()
        assert audited == 1
        # Once the lockdown is over, retention blanks what was delivered; the log of attempts stays.
        with notify.runtime.database.unit_of_work() as session:
            assert scrub(notify.runtime, session, "c1")["subscription_bodies"] == 2
        with notify.runtime.database.reading() as session:
            bodies = session.execute(select(subscription_deliveries.c.body)).scalars().all()
        assert bodies == ["{}", "{}"]
    finally:
        other.stop()


@both_databases
def test_the_migrations_create_exactly_notifys_tables(new_database, tmp_path) -> None:
    runtime = make_notify(new_database("notify"), tmp_path)
    with runtime.database.engine.connect() as connection:
        ours = {"include_name": lambda name, kind, _parent: kind != "table" or name.startswith("notify_")}
        differences = compare_metadata(MigrationContext.configure(connection, opts=ours), tables)
    assert differences == [], differences
    runtime.database.dispose()


@both_databases
def test_a_revoked_key_gets_nothing_more(notify: Notify, sink: Sink) -> None:
    dashboard = external(notify, [CASE], ["c1"])
    register(notify, dashboard, sink, [CASE], ["c1"])
    receive(notify.runtime, case(1, 1), topic="juwei.testing")
    notify.dispatcher.drain()
    assert len(sink.accepted()) == 1
    with notify.runtime.database.unit_of_work() as session:
        assert revoke_key(session, dashboard["X-API-Key"].split("_")[1])
    receive(notify.runtime, case(1, 2), topic="juwei.testing")
    notify.dispatcher.drain(timeout=2)
    assert len(sink.received) == 1
    with notify.runtime.database.reading() as session:
        assert session.execute(select(func.count()).select_from(subscription_deliveries)).scalar() == 1
