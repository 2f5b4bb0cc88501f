"""Crypto-shredding and private event fields, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import ClassVar

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from juwei.events import DomainEvent, EventRegistry
from juwei.store import EventStore, events_table
from juwei.vault import Vault, new_master_key
from tests.conftest import both_databases
from tests.kernel.harness import runtime
from tests.kernel.sample import definitions


class PersonNoted(DomainEvent):
    event_type = "juwei.sample.PersonNoted"
    private_fields: ClassVar[frozenset[str]] = frozenset({"identity"})
    person: str
    building: str
    identity: str


@both_databases
def test_shredding_a_subject_makes_its_sealed_data_unreadable_but_keeps_the_log(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    vault = Vault(new_master_key())
    registry = EventRegistry()
    registry.register(PersonNoted)
    store = EventStore("/juwei/sample", registry)
    with made.database.unit_of_work() as session:
        for person in ("p1", "p2"):
            token = vault.seal(session, person, {"name": f"张三{person}", "phone": "13800138000"})
            store.append(
                session,
                f"person-{person}",
                [PersonNoted(person=person, building="3", identity=token)],
                expected_version=0,
                compound="c1",
            )
    with made.database.reading() as session:
        raw = session.execute(select(events_table.c.data, events_table.c.private)).all()
        envelope = store.read_stream(session, "person-p1")[0]
        event = store.decode(envelope)
        assert vault.unseal(session, "p1", event.identity)["name"] == "张三p1"
    assert all("张三" not in data and "13800138000" not in data and "identity" not in data for data, _ in raw)
    assert all("张三" not in private for _, private in raw)  # sealed, not plain
    assert "identity" not in envelope.to_cloudevent()["data"]
    assert b"identity" not in envelope.to_kafka()[1]

    with made.database.unit_of_work() as session:
        assert vault.shred(session, "p1")
    with made.database.reading() as session:
        event = store.decode(store.read_stream(session, "person-p1")[0])
        assert vault.unseal(session, "p1", event.identity) is None
        assert vault.is_shredded(session, "p1")
        other = store.decode(store.read_stream(session, "person-p2")[0])
        assert vault.unseal(session, "p2", other.identity)["name"] == "张三p2"
        assert store.head(session) == 2  # the log is untouched
    made.database.dispose()


def test_rotation_rewraps_live_keys_and_the_old_master_key_opens_nothing_new(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    old, new = new_master_key(), new_master_key()
    with made.database.unit_of_work() as session:
        token = Vault(old).seal(session, "p9", {"name": "李四"})
        assert Vault(old).rotate(session, new) == 1
    with made.database.reading() as session:
        assert Vault(new).unseal(session, "p9", token) == {"name": "李四"}
        with pytest.raises(InvalidTag):
            Vault(old).unseal(session, "p9", token)
    made.database.dispose()
