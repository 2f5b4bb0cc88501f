"""On the real Kafka: residents' register of compounds reaches supplies, and a subdistrict's key then opens
exactly the compounds registered in its subdistrict there (one moved away is closed again)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from contracts import roles as r
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import dead_letter_topic
from juwei.service import Runtime, create_app
from juwei.subdistricts import compound_subdistricts_table, compounds_of
from tests.conftest import both_databases
from tests.kernel.harness import start_at_the_end, wait_for
from tests.residents.conftest import make_residents
from tests.supplies.conftest import make_supplies


def _operator(runtime: Runtime) -> dict[str, str]:
    with runtime.database.unit_of_work() as session:
        return {
            "X-API-Key": issue_key(session, r.DISTRICT_OPERATOR, None, holder=Holder("official", "区 operator")).key
        }


def _placed(runtime: Runtime, compounds: set[str]) -> dict[str, str]:
    table = compound_subdistricts_table
    with runtime.database.reading() as session:
        rows = session.execute(select(table.c.compound, table.c.subdistrict).where(table.c.compound.in_(compounds)))
        return {compound: placed for compound, placed in rows}


@both_databases
def test_a_subdistrict_key_opens_in_supplies_the_compounds_residents_registered(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str
) -> None:
    if broker is not None:
        broker.create_topics(["juwei.residents", "juwei.supplies", dead_letter_topic("juwei.residents")])
    near, far, subdistrict, other = f"n{suffix}", f"f{suffix}", f"s{suffix}", f"t{suffix}"
    residents = make_residents(new_database("residents"), tmp_path / "residents", kafka=kafka)
    supplies = make_supplies(new_database("supplies"), tmp_path / "supplies", kafka=kafka)
    consumer = supplies.make_consumer()
    consumer.group = f"supplies-subdistrict-{suffix}"  # a group of its own, from the topic's end
    consumer.consumer_overrides = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    start_at_the_end(kafka, consumer.group, "juwei.residents")
    relay = residents.make_relay()
    try:
        with TestClient(create_app(residents, background=False)) as client:
            operator = _operator(residents)
            for compound, place in ((near, subdistrict), (far, other)):
                answer = client.put(f"/compounds/{compound}/registration",
                                    json={"subdistrict": place, "name": "小区"}, headers=operator)  # fmt: skip
                assert answer.status_code == 200, answer.text
        relay.publish_once()
        wanted = {near: subdistrict, far: other}
        wait_for(lambda: (consumer.poll_once(500), _placed(supplies, {near, far}))[1] == wanted, timeout=120,
                 what="supplies to learn the register of compounds from juwei.residents")  # fmt: skip

        with supplies.database.unit_of_work() as session:
            holder = Holder("official", "街道 王主任")
            key = issue_key(session, r.SUBDISTRICT_STAFF, None, holder=holder, subdistrict=subdistrict).key
        headers = {"X-API-Key": key, "Accept-Language": "zh-CN"}
        with TestClient(create_app(supplies, background=False)) as client:
            assert client.get(f"/compounds/{near}/medicine/outstanding", headers=headers).status_code == 200
            refused = client.get(f"/compounds/{far}/medicine/outstanding", headers=headers)
            assert refused.status_code == 403 and subdistrict in refused.json()["detail"]
            assert client.get("/events", headers=headers).status_code == 200

            # Moved to the other subdistrict: closed to this key as soon as supplies hears of it.
            with TestClient(create_app(residents, background=False)) as residents_client:
                moved = residents_client.put(f"/compounds/{near}/registration",
                                             json={"subdistrict": other, "name": "小区"}, headers=operator)  # fmt: skip
                assert moved.status_code == 200
            relay.publish_once()
            wait_for(lambda: (consumer.poll_once(500), _placed(supplies, {near}))[1] == {near: other}, timeout=120,
                     what="supplies to learn the move")  # fmt: skip
            assert client.get(f"/compounds/{near}/medicine/outstanding", headers=headers).status_code == 403
        with supplies.database.reading() as session:
            assert compounds_of(session, subdistrict) == frozenset()
    finally:
        relay.close()
        consumer.close()
        residents.database.dispose()
        supplies.database.dispose()
