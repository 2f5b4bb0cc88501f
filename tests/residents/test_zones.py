"""Zone status: from confirmed cases (through the real Kafka), as days pass, and by the authorities."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from kafka import KafkaProducer

from contracts import roles as r
from contracts.testing import CaseConfirmed
from juwei.consumer import dead_letter_topic
from juwei.events import Envelope, new_event_id, utcnow
from juwei.service import create_app
from services.residents import handlers
from tests.conftest import both_databases
from tests.kernel.harness import published, relay_everything, start_at_the_end, wait_for
from tests.residents.conftest import TODAY, make_residents
from tests.residents.seed import register_buildings


def _case(compound: str, building: str, on: date) -> Envelope:
    event = CaseConfirmed(
        case=f"case-{new_event_id()[:8]}",
        resident=f"{compound}:r1",
        household=f"{compound}:h1",
        building=f"{compound}:{building}",
        confirmed_on=on,
    )
    return Envelope(
        id=new_event_id(),
        source="/juwei/testing",
        type=event.type_name(),
        subject=f"case-{event.case}",
        time=utcnow(),
        data=event.model_dump(mode="json"),
        compound=compound,
        streamversion=1,
        building=event.building,
    )


@both_databases
def test_days_since_the_last_case_move_a_building_from_sealed_to_controlled_to_precaution(
    new_database, tmp_path: Path
) -> None:
    url = new_database("residents")
    runtime = make_residents(url, tmp_path)
    register_buildings(runtime, "c1", 3)
    with runtime.database.unit_of_work() as session:
        handlers.record_case(runtime, session, "c1", "c1:2", TODAY)
    with TestClient(create_app(runtime, background=False)) as client:
        key = _key(runtime, r.HOUSEHOLD)
        zone = client.get("/compounds/c1/buildings/2/zone", headers=key).json()
        assert (zone["zone"], zone["days_since_last_case"], zone["next_zone"], zone["next_change_on"]) == (
            "sealed",
            0,
            "controlled",
            "2022-04-17",
        )
        whole = client.get("/compounds/c1/zones", headers=key).json()
        assert whole["compound"]["zone"] == "sealed"
        assert [b["zone"] for b in whole["buildings"]] == ["precaution", "sealed", "precaution"]
    runtime.database.dispose()

    for day, expected in ((6, "sealed"), (7, "controlled"), (13, "controlled"), (14, "precaution")):
        later = make_residents(url, tmp_path, today=TODAY + timedelta(days=day))
        handlers.let_the_days_count(later)
        with TestClient(create_app(later, background=False)) as client:
            zone = client.get("/compounds/c1/buildings/2/zone", headers=_key(later, r.HOUSEHOLD)).json()
            whole = client.get("/compounds/c1/zones", headers=_key(later, r.HOUSEHOLD)).json()["compound"]
        assert zone["zone"] == expected, (day, zone)
        assert zone["days_since_last_case"] == day
        assert whole["zone"] == expected
        later.database.dispose()
    changes = _zone_events(make_residents(url, tmp_path))
    assert [(e["building"], e["zone"]) for e in changes] == [
        ("c1:2", "sealed"),
        (None, "sealed"),
        ("c1:2", "controlled"),
        (None, "controlled"),
        ("c1:2", "precaution"),
        (None, "precaution"),
    ]


def test_an_authority_decision_holds_until_the_next_case(new_database, tmp_path: Path) -> None:
    runtime = make_residents(new_database("residents"), tmp_path)
    register_buildings(runtime, "c1", 2)
    staff = _key(runtime, r.COMMITTEE_STAFF)
    with TestClient(create_app(runtime, background=False)) as client:
        decided = client.post(
            "/compounds/c1/zones/decisions",
            json={"building": "1", "zone": "sealed", "reason": "街道通知第3号"},
            headers=staff,
        )
        assert decided.status_code == 201, decided.text
        zone = client.get("/compounds/c1/buildings/1/zone", headers=staff).json()
        assert (zone["zone"], zone["decided_by_authority"], zone["next_change_on"]) == ("sealed", True, None)
        assert (
            client.post(
                "/compounds/c1/zones/decisions", json={"zone": "sealed", "reason": " "}, headers=staff
            ).status_code
            == 422
        )
        assert (
            client.post(
                "/compounds/c1/zones/decisions", json={"zone": "closed", "reason": "x"}, headers=staff
            ).status_code
            == 422
        )
        assert (
            client.post(
                "/compounds/c1/zones/decisions",
                json={"building": "1", "zone": "sealed", "reason": "x"},
                headers=_key(runtime, r.INFORMATION_OFFICER, ["1"]),
            ).status_code
            == 403
        )
        handlers.let_the_days_count(runtime)  # days do not undo a decision
        assert client.get("/compounds/c1/buildings/1/zone", headers=staff).json()["decided_by_authority"]
        with runtime.database.unit_of_work() as session:
            handlers.record_case(runtime, session, "c1", "c1:1", TODAY)
        zone = client.get("/compounds/c1/buildings/1/zone", headers=staff).json()
        assert (zone["zone"], zone["decided_by_authority"], zone["next_change_on"]) == ("sealed", False, "2022-04-17")
        assert client.get("/compounds/c1/buildings/9/zone", headers=staff).status_code == 404
        assert client.get("/compounds/c1/zones", headers=_key(runtime, r.EXTERNAL_CONSUMER)).status_code == 403
    runtime.database.dispose()


@both_databases
def test_a_case_from_testing_on_kafka_seals_the_building_and_the_change_goes_out_on_kafka(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str
) -> None:
    compound = f"k{suffix}"
    if broker is not None:
        broker.create_topics(["juwei.testing", "juwei.residents", dead_letter_topic("juwei.testing")])
    runtime = make_residents(new_database("residents"), tmp_path, kafka=kafka)
    register_buildings(runtime, compound, 4)
    consumer = runtime.make_consumer()
    consumer.group = f"residents-test-{suffix}"  # its own group, from the ends: not earlier cases
    consumer.consumer_overrides = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    start_at_the_end(kafka, consumer.group, *consumer.topics)
    producer = KafkaProducer(bootstrap_servers=kafka)
    key, value, headers = _case(compound, "3", TODAY).to_kafka()
    producer.send("juwei.testing", key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    try:
        wait_for(
            lambda: (consumer.poll_once(300), _zone_of(runtime, compound, "3"))[1] == "sealed",
            what="the building to be sealed",
        )
    finally:
        consumer.close()
    records = published(kafka, "juwei.residents", lambda: relay_everything(runtime), compound)
    mine = [Envelope.from_kafka(rec.value, rec.headers) for rec in records]
    changes = [e for e in mine if e.type == "juwei.residents.ZoneStatusChanged.v1"]
    assert {(e.data["building"], e.data["zone"]) for e in changes} == {(f"{compound}:3", "sealed"), (None, "sealed")}
    assert next(e for e in changes if e.building).key == f"{compound}:3"  # keyed by building: ordered per building
    runtime.database.dispose()


def _zone_of(runtime, compound: str, building: str) -> str | None:
    from sqlalchemy import select

    from services.residents.views import zones

    with runtime.database.reading() as session:
        return session.execute(select(zones.c.zone).where(zones.c.scope_id == f"{compound}:{building}")).scalar()


def _zone_events(runtime) -> list[dict]:
    with runtime.database.reading() as session:
        return [
            e.data
            for e in runtime.store.read_after(session, 0, 10_000)
            if e.type == "juwei.residents.ZoneStatusChanged.v1"
        ]


def _key(runtime, role: str, buildings: list[str] | None = None) -> dict[str, str]:
    from juwei.auth import issue_key
    from juwei.callers import Holder

    with runtime.database.unit_of_work() as session:
        return {"X-API-Key": issue_key(session, role, "c1", buildings, holder=Holder("system", f"test {role}")).key}
