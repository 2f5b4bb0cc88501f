"""On the real Kafka: residents events build the read model, a batch for 5,000 residents goes out.

The residents events are made with the residents service's published catalogue and published to
``juwei.residents`` as CloudEvents; the supplies consumer (a group of its own, a compound of its own:
the topics are shared between tests) builds its register from them. Then the batch is allocated by
household size, dispatched (both shifts: every building is above the threshold), delivered floor by
floor over HTTP with some households not at home or refusing, followed up until nothing is left, and
what supplies published is read back from ``juwei.supplies``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient
from kafka import KafkaProducer
from sqlalchemy import func, select

from contracts import roles as r
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import dead_letter_topic
from juwei.events import Envelope
from juwei.service import Runtime, create_app
from services.supplies.views import buildings, households, residents, shares, volunteer_roles
from tests.conftest import both_databases
from tests.kernel.harness import published, relay_everything, start_at_the_end, wait_for
from tests.supplies.conftest import make_supplies
from tests.supplies.seed import SeededCompound

RESIDENTS, BUILDINGS, FLOORS, ROOMS = 5000, 25, 18, 4


def _register_counts(runtime: Runtime, compound: str) -> tuple[int, int, int, int]:
    with runtime.database.reading() as session:
        return tuple(  # type: ignore[return-value]
            int(session.execute(select(func.count()).select_from(t).where(t.c.compound == compound)).scalar() or 0)
            for t in (buildings, households, residents, volunteer_roles)
        )


def _publish(kafka: str, envelopes: list[Envelope]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=20, batch_size=256 * 1024)
    for envelope in envelopes:
        key, value, headers = envelope.to_kafka()
        producer.send("juwei.residents", key=key, value=value, headers=headers)
    producer.flush()
    producer.close()


@both_databases
def test_residents_events_on_kafka_feed_a_5000_resident_batch_delivered_and_followed_up(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str
) -> None:
    compound = f"s{suffix}"
    if broker is not None:
        broker.create_topics(["juwei.residents", "juwei.supplies", dead_letter_topic("juwei.residents")])
    seed = SeededCompound(compound, BUILDINGS, FLOORS, ROOMS, RESIDENTS).build()
    runtime = make_supplies(new_database("supplies"), tmp_path, kafka=kafka)
    consumer = runtime.make_consumer()
    consumer.group = f"supplies-test-{suffix}"  # a group of its own
    consumer.consumer_overrides = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    start_at_the_end(kafka, consumer.group, "juwei.residents")
    _publish(kafka, seed.envelopes)
    expected = (BUILDINGS, BUILDINGS * FLOORS * ROOMS, RESIDENTS, BUILDINGS * 7)
    started = time.perf_counter()
    try:
        wait_for(
            lambda: (consumer.poll_once(500), _register_counts(runtime, compound))[1] == expected,
            timeout=240,
            what="the register to be built from juwei.residents",
        )
    finally:
        consumer.close()
    consumed = time.perf_counter() - started

    with runtime.database.unit_of_work() as session:
        staff = {
            "X-API-Key": issue_key(session, r.COMMITTEE_STAFF, compound, holder=Holder("system", "test staff")).key
        }
        logistics = {
            "X-API-Key": issue_key(
                session, r.LOGISTICS_VOLUNTEER, compound, holder=Holder("system", "test logistics")
            ).key
        }
    items = {"rice": RESIDENTS, "vegetables": 1800, "masks": 10_000}
    url = f"/compounds/{compound}"
    with TestClient(create_app(runtime, background=False)) as client:
        batch = {
            "batch": "gov-1",
            "source": "government",
            "label": "保供 batch for the whole compound",
            "items": [{"item": k, "quantity": v} for k, v in items.items()],
            "whole_compound": True,
        }
        assert client.post(f"{url}/batches", json=batch, headers=staff).status_code == 201
        planned = client.post(f"{url}/batches/gov-1/allocation", json={"method": "household_size"}, headers=staff)
        assert planned.status_code == 201, planned.text
        assert planned.json()["households"] == BUILDINGS * FLOORS * ROOMS
        plan = client.get(f"{url}/batches/gov-1/allocation", headers=staff).json()["shares"]
        assert len({s["household"] for s in plan}) == len(plan) == BUILDINGS * FLOORS * ROOMS  # no household twice
        for item, quantity in items.items():
            assert sum(s["items"].get(item, 0) for s in plan) == quantity  # totals conserved
        by_household = {s["household"]: s for s in plan}
        assert by_household["h1-0101"]["items"]["rice"] == 3 and by_household["h1-0201"]["items"]["rice"] == 3
        assert by_household["h25-1804"]["items"]["rice"] == 2  # 5,000 over 1,800 households: 3s first, then 2s

        sent = client.post(f"{url}/batches/gov-1/dispatch", headers=staff)
        assert sent.status_code == 200, sent.text
        calls = sent.json()["calls"]
        assert len(calls) == BUILDINGS and all(c["both"] and len(c["volunteers"]) == 6 for c in calls)

        failed: dict[str, tuple[str, str]] = {}
        for b in range(1, BUILDINGS + 1):
            for floor in range(1, FLOORS + 1):
                outcomes = []
                for room in range(1, ROOMS + 1):
                    household = seed.household(b, floor, room)
                    n = (b * 1000 + floor * 10 + room) % 41
                    outcome = "no_one_home" if n == 0 else "refused" if n == 1 else "delivered"
                    if outcome != "delivered":
                        failed[household] = (str(b), outcome)
                    outcomes.append({"household": household, "outcome": outcome})
                answer = client.post(
                    f"{url}/batches/gov-1/buildings/{b}/outcomes",
                    json={"volunteer": seed.volunteer(b, 2 + floor % 5), "outcomes": outcomes},
                    headers=logistics,
                )
                assert answer.status_code == 200, answer.text
        assert 30 < len(failed) < 150
        listed = client.get(f"{url}/follow-ups", headers=staff).json()
        assert listed["count"] == len(failed)
        assert {f["household"]: (f["building"], f["reason"]) for f in listed["follow_ups"]} == failed
        for household, (b, reason) in failed.items():
            if reason == "no_one_home":  # the second round finds them in
                answer = client.post(
                    f"{url}/batches/gov-1/buildings/{b}/outcomes",
                    json={
                        "volunteer": seed.volunteer(int(b), 4),
                        "outcomes": [{"household": household, "outcome": "delivered"}],
                    },
                    headers=logistics,
                )
            else:  # refused: the share goes back to the committee's stock
                answer = client.post(
                    f"{url}/batches/gov-1/buildings/{b}/follow-ups/{household}/resolution",
                    json={"resolution": "returned_to_stock", "volunteer": seed.volunteer(int(b), 1)},
                    headers=logistics,
                )
            assert answer.status_code == 200, answer.text
        assert client.get(f"{url}/follow-ups", headers=staff).json()["count"] == 0
        progress = client.get(f"{url}/batches/gov-1/progress", headers=staff).json()
        refused = sum(1 for _, reason in failed.values() if reason == "refused")
        assert progress["delivered"] == BUILDINGS * FLOORS * ROOMS - refused
        assert all(b["complete"] for b in progress["buildings"])
        assert progress["buildings"][11]["text"].startswith("Building 12: ")
    with runtime.database.reading() as session:
        statuses = Counter(session.execute(select(shares.c.status).where(shares.c.compound == compound)).scalars())
    assert statuses == {"delivered": BUILDINGS * FLOORS * ROOMS - refused, "returned_to_stock": refused}

    sent: list[int] = []
    records = published(kafka, "juwei.supplies", lambda: sent.append(relay_everything(runtime)), compound)
    mine = [Envelope.from_kafka(record.value, record.headers) for record in records]
    kinds = Counter(e.type.split(".")[2] for e in mine)
    assert len(mine) == sum(sent)
    assert kinds["AllocationPlanned"] == kinds["ShiftCalled"] == kinds["BuildingDelivered"] == BUILDINGS
    assert kinds["DeliveryConfirmed"] == BUILDINGS * FLOORS * ROOMS - refused
    assert kinds["FollowUpResolved"] == len(failed)
    called = next(e for e in mine if e.type.endswith("ShiftCalled.v1"))
    assert called.data["both"] and called.key == called.data["building"]  # keyed by building: in order per building
    assert all("identity" not in json.dumps(e.data) for e in mine)
    print(f"\nregister from Kafka: {len(seed.envelopes)} events in {consumed:.1f} s")
    runtime.database.dispose()
