"""On the real Kafka: a call list that fills and empties.

Residents marks households that hear no building group (over HTTP, published by its relay to
``juwei.residents``); a case confirmed in building 1 arrives on ``juwei.testing``; notify (its own consumer
group, a compound of its own) puts the marked household of building 1 on that building's officer's call
list, and nobody else's. The officer marks it done (twice: once is recorded) and the list empties. A second
urgent message with a deadline of 0 minutes leaves a call undone past its deadline: it is in staff's list.
Other buildings' officers are refused in Chinese; bad input is refused and writes nothing; a replay rebuilds
the lists as they were.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from contracts import roles as r
from contracts.ids import global_id
from contracts.testing import CaseConfirmed, RoundScheduled
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import dead_letter_topic
from juwei.events import Envelope, utcnow
from juwei.service import Runtime, create_app
from juwei.store import events_table
from services.notify.calls.application import count_overdue
from services.notify.calls.listing import DUE_MINUTES_ENV
from services.notify.calls.views import unreachable
from tests.conftest import both_databases
from tests.kernel.harness import published, relay_everything, start_at_the_end, wait_for
from tests.notify.conftest import envelope, make_notify
from tests.residents.conftest import make_residents

ZH = {"Accept-Language": "zh-CN"}
CHINESE = re.compile(r"[\u4e00-\u9fff]")
TOPICS = ["juwei.residents", "juwei.testing", "juwei.notify"]


def _key(runtime: Runtime, role: str, compound: str, buildings: list[str] | None = None) -> dict[str, str]:
    with runtime.database.unit_of_work() as session:
        secret = issue_key(session, role, compound, buildings, holder=Holder("system", f"test {role}")).key
    return {"X-API-Key": secret}


def _publish(kafka: str, topic: str, *envelopes: Envelope) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for sent in envelopes:
        key, value, headers = sent.to_kafka()
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()


def _events(runtime: Runtime) -> int:
    with runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar() or 0)


@both_databases
def test_a_call_list_fills_and_empties(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    compound = f"u{suffix}"
    if broker is not None:
        broker.create_topics([*TOPICS, *(dead_letter_topic(t) for t in TOPICS)])
    residents = make_residents(new_database("residents"), tmp_path / "residents", kafka=kafka)
    notify = make_notify(new_database("notify"), tmp_path / "notify", kafka=kafka)
    consumer = notify.make_consumer()
    consumer.group = f"notify-calls-test-{suffix}"  # a group of its own: the topics are shared between tests
    consumer.consumer_overrides = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    start_at_the_end(kafka, consumer.group, "juwei.residents", "juwei.testing")
    url = f"/compounds/{compound}"

    with TestClient(create_app(residents, background=False)) as register:
        staff = _key(residents, r.COMMITTEE_STAFF, compound)
        officer_1 = _key(residents, r.INFORMATION_OFFICER, compound, ["b1"])
        officer_2 = _key(residents, r.INFORMATION_OFFICER, compound, ["b2"])
        for building in ("b1", "b2"):
            body = {"building": building, "number": building[1:], "floors": 6, "rooms_per_floor": 2, "lifts": 0,
                    "lift_capacity": 0}  # fmt: skip
            assert register.post(f"{url}/buildings", json=body, headers=staff).status_code == 201
        for household, building, floor in (("h11", "b1", 3), ("h12", "b1", 5), ("h21", "b2", 2)):
            body = {"household": household, "building": building, "floor": floor, "room": 1}
            assert register.post(f"{url}/households", json=body, headers=staff).status_code == 201

        marked = register.put(f"{url}/households/h11/unreachable", json={"reason": "no_smartphone"}, headers=officer_1)
        assert marked.status_code == 200, marked.text
        assert marked.json() == {"household": "h11", "building": "b1", "unreachable": True, "reason": "no_smartphone"}
        again = register.put(f"{url}/households/h11/unreachable", json={"reason": "no_smartphone"}, headers=officer_1)
        assert again.status_code == 200
        assert register.put(f"{url}/households/h21/unreachable", json={}, headers=officer_2).status_code == 200

        # Scope and bad input: refused, in Chinese where a person reads it, and nothing is written.
        before = _events(residents)
        refused = register.put(f"{url}/households/h12/unreachable", json={}, headers={**officer_2, **ZH})
        assert refused.status_code == 403 and CHINESE.search(refused.json()["detail"]), refused.text
        bad = register.put(f"{url}/households/h12/unreachable", json={"reason": "no_landline"}, headers=officer_1)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        unknown = register.put(f"{url}/households/h99/unreachable", json={}, headers=staff)
        assert unknown.status_code == 404 and unknown.json()["status"] == 404
        assert _events(residents) == before
        # Marked and cleared: h12 must not be called.
        assert register.put(f"{url}/households/h12/unreachable", json={}, headers=staff).status_code == 200
        cleared = register.delete(f"{url}/households/h12/unreachable", headers=officer_1)
        assert cleared.json() == {"household": "h12", "building": "b1", "unreachable": False, "reason": None}

    # The marks on Kafka carry ids and the flat, never a name or a phone.
    records = published(kafka, "juwei.residents", lambda: relay_everything(residents), compound)
    marks = [
        Envelope.from_kafka(rec.value, rec.headers)
        for rec in records
        if b"HouseholdMarkedUnreachable" in dict(rec.headers)["ce_type"]
    ]
    assert len(marks) == 3 and all(set(m.data) == {"household", "building", "floor", "room", "reason"} for m in marks)

    def marked_count() -> int:
        consumer.poll_once(500)
        with notify.database.reading() as session:
            return len(
                session.execute(
                    select(unreachable.c.household).where(
                        unreachable.c.compound == compound, unreachable.c.marked.is_(True)
                    )
                ).all()
            )

    try:
        wait_for(lambda: marked_count() == 2, timeout=120, what="notify to learn the marked households")
        case = CaseConfirmed(case=global_id(compound, "k1"), building=global_id(compound, "b1"),
                             confirmed_on=date(2022, 4, 10))  # fmt: skip
        _publish(kafka, "juwei.testing", envelope(case, compound, "testing", "case-k1"))

        with TestClient(create_app(notify, background=False)) as client:
            n_staff = _key(notify, r.COMMITTEE_STAFF, compound)
            n_officer_1 = _key(notify, r.INFORMATION_OFFICER, compound, ["b1"])
            n_officer_2 = _key(notify, r.INFORMATION_OFFICER, compound, ["b2"])

            def open_calls(building: str, headers: dict[str, str]) -> list[dict]:
                consumer.poll_once(500)
                return client.get(f"{url}/buildings/{building}/calls", headers=headers).json()["calls"]

            wait_for(lambda: len(open_calls("b1", n_officer_1)) == 1, timeout=120, what="the call to be listed")
            (call,) = open_calls("b1", n_officer_1)
            assert (call["household"], call["floor"], call["room"], call["reason"]) == ("h11", 3, 1, "no_smartphone")
            assert call["template"] == "case_confirmed" and "阳性" in call["say"] and call["building_number"] == "1"
            assert not call["done"] and not call["overdue"]
            assert open_calls("b2", n_officer_2) == []  # the case was in building 1: building 2 calls nobody
            assert client.get(f"{url}/calls/overdue", headers=n_staff).json() == {"overdue": 0, "calls": []}

            # Another building's officer: refused, in Chinese; the call stays open.
            other = client.get(f"{url}/buildings/b1/calls", headers={**n_officer_2, **ZH})
            assert other.status_code == 403 and CHINESE.search(other.json()["detail"]), other.text
            done_by_other = client.post(f"{url}/calls/{call['call']}/done", headers={**n_officer_2, **ZH})
            assert done_by_other.status_code == 403 and CHINESE.search(done_by_other.json()["detail"])
            assert client.get(f"{url}/calls/overdue", headers=n_officer_1).status_code == 403  # staff only
            missing = client.post(f"{url}/calls/nosuchcall/done", headers={**n_officer_1, **ZH})
            assert missing.status_code == 404 and missing.json()["code"] == "call-unknown"
            assert CHINESE.search(missing.json()["detail"]), missing.text
            assert client.get(f"{url}/buildings/b1/calls?status=late", headers=n_officer_1).status_code == 422
            assert len(open_calls("b1", n_officer_1)) == 1

            done = client.post(f"{url}/calls/{call['call']}/done", headers=n_officer_1)
            assert done.status_code == 200, done.text
            assert done.json()["done"] and done.json()["done_by"] and done.json()["done_at"]
            twice = client.post(f"{url}/calls/{call['call']}/done", headers=n_staff)
            assert twice.status_code == 200 and twice.json()["done_at"] == done.json()["done_at"]
            assert twice.json()["done_by"] == done.json()["done_by"]  # the first mark stays
            emptied = client.get(f"{url}/buildings/b1/calls", headers=n_officer_1).json()
            assert emptied["open"] == 0 and emptied["calls"] == []
            history = client.get(f"{url}/buildings/b1/calls?status=done", headers=n_officer_1).json()["calls"]
            assert [c["household"] for c in history] == ["h11"]

            # A round for the whole compound, with no time to call: building 2's household is overdue for staff.
            monkeypatch.setenv(DUE_MINUTES_ENV, "0")
            now = utcnow()
            round_ = RoundScheduled(
                round=global_id(compound, "r1"), kind="pcr", on=date(2022, 4, 11), starts_at=now, points=[],
                mode="floor", floors_per_call=2, floor_order="down", pool_size=10, slot_minutes=10,
                window_minutes=60, lift_trip_minutes=2, walk_floors=3, auto_advance=True,
            )  # fmt: skip
            _publish(kafka, "juwei.testing", envelope(round_, compound, "testing", "round-r1"))
            wait_for(lambda: len(open_calls("b2", n_officer_2)) == 1, timeout=120, what="the round's calls")
            overdue = client.get(f"{url}/calls/overdue", headers=n_staff).json()
            assert [(c["building"], c["household"], c["template"]) for c in overdue["calls"]] == [
                ("b1", "h11", "round_scheduled"),  # building 1's household again: a new urgent message
                ("b2", "h21", "round_scheduled"),
            ]
            assert overdue["overdue"] == 2 and all(c["overdue"] for c in overdue["calls"])
            count_overdue(notify)  # the periodic job behind the metric
            assert REGISTRY.get_sample_value("juwei_notify_calls_overdue", {"compound": compound}) == 2

            # The call lists are read models of notify's own events: a replay rebuilds them as they were.
            def everything() -> list[list[dict]]:
                return [client.get(f"{url}/buildings/{b}/calls?status=all", headers=n_staff).json()["calls"]
                        for b in ("b1", "b2")]  # fmt: skip

            before_replay = everything()
            assert notify.projector.rebuild(["calls", "unreachable"]) > 0
            assert everything() == before_replay and len(before_replay[0]) == 2
        # What notify published of the calls: ids and the deadline, never the message's words.
        records = published(kafka, "juwei.notify", lambda: relay_everything(notify), compound)
    finally:
        consumer.close()
        residents.database.dispose()
        notify.database.dispose()

    listed = [
        Envelope.from_kafka(rec.value, rec.headers) for rec in records if b"CallsListed" in dict(rec.headers)["ce_type"]
    ]
    assert len(listed) == 3 and all(set(e.data) == {"message", "building", "households", "due_at"} for e in listed)
