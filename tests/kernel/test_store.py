"""The event store on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest

from juwei.aggregate import DomainRuleViolation
from juwei.repository import Repository
from juwei.store import ConcurrencyError, snapshots_table
from tests.conftest import both_databases
from tests.kernel.harness import runtime
from tests.kernel.sample import Tallied, Tally, definitions


@both_databases
def test_append_checks_the_expected_version_and_reads_back_in_order(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    store = made.store
    with made.database.unit_of_work() as session:
        first = store.append(session, "tally-1", [Tallied(building="1", amount=2)], expected_version=0, compound="c1")
        store.append(session, "tally-1", [Tallied(building="1", amount=3)], expected_version=1, compound="c1")
    with pytest.raises(ConcurrencyError) as stale, made.database.unit_of_work() as session:
        store.append(session, "tally-1", [Tallied(building="1", amount=9)], expected_version=1, compound="c1")
    assert stale.value.actual == 2
    with made.database.reading() as session:
        stream = store.read_stream(session, "tally-1")
        after = store.read_after(session, first[0].position or 0)
    assert [e.data["amount"] for e in stream] == [2, 3]
    assert [e.streamversion for e in stream] == [1, 2]
    assert [e.data["amount"] for e in after] == [3]
    made.database.dispose()


@both_databases
def test_a_failed_unit_of_work_leaves_nothing_behind(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    repo = Repository(made.store, Tally)
    with pytest.raises(DomainRuleViolation), made.database.unit_of_work() as session:
        tally = repo.load(session, "5")
        tally.add(4)
        repo.save(session, tally, compound="c1")
        tally.add(-10)  # breaks the rule after the first save: the whole unit must roll back
    with made.database.reading() as session:
        assert made.store.head(session) == 0
        assert repo.load(session, "5").version == 0
    made.database.dispose()


@both_databases
def test_long_streams_load_from_a_snapshot_with_the_same_state(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    repo = Repository(made.store, Tally)
    for amount in range(1, 26):
        with made.database.unit_of_work() as session:
            tally = repo.load(session, "9")
            tally.add(amount)
            repo.save(session, tally, compound="c1")
    with made.database.reading() as session:
        snapshot = session.execute(snapshots_table.select()).mappings().one()
        loaded = repo.load(session, "9")
        stream = made.store.read_stream(session, "tally-9")
    assert snapshot["version"] == 20
    assert loaded.version == 25
    assert loaded.total == sum(range(1, 26)) == sum(e.data["amount"] for e in stream)
    made.database.dispose()


@both_databases
def test_old_event_versions_are_upcast_on_read(new_database, suffix: str) -> None:
    from tests.kernel.sample import TalliedV1

    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    with made.database.unit_of_work() as session:
        made.store.append(session, "tally-2", [TalliedV1(building="2", count=7)], expected_version=0, compound="c1")
    with made.database.reading() as session:
        tally = Repository(made.store, Tally).load(session, "2")
        envelope = made.store.read_stream(session, "tally-2")[0]
    assert envelope.type == "juwei.sample.Tallied.v2"
    assert envelope.data == {"building": "2", "amount": 7, "note": ""}
    assert tally.total == 7
    made.database.dispose()


@both_databases
def test_append_many_continues_each_stream_and_refuses_all_when_one_moved(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    store = made.store
    with made.database.unit_of_work() as session:
        store.append(
            session,
            "tally-a",
            [Tallied(building="1", amount=n) for n in range(1, 4)],
            expected_version=0,
            compound="c1",
        )
    with made.database.unit_of_work() as session:
        appended = store.append_many(
            session,
            [
                ("tally-a", [Tallied(building="1", amount=10)], 3, "c1"),
                ("tally-b", [Tallied(building="2", amount=20), Tallied(building="2", amount=21)], 0, "c1"),
                ("tally-c", [Tallied(building="3", amount=30)], None, "c2"),
            ],
        )
    assert [(e.subject, e.streamversion) for e in appended] == [
        ("tally-a", 4),
        ("tally-b", 1),
        ("tally-b", 2),
        ("tally-c", 1),
    ]
    positions = [e.position for e in appended]
    assert positions == sorted(positions) and len(set(positions)) == 4
    with pytest.raises(ConcurrencyError) as stale, made.database.unit_of_work() as session:
        store.append_many(
            session,
            [
                ("tally-c", [Tallied(building="3", amount=31)], 1, "c2"),
                ("tally-b", [Tallied(building="2", amount=22)], 1, "c1"),
            ],
        )
    assert (stale.value.stream_id, stale.value.actual) == ("tally-b", 2)
    with made.database.reading() as session:
        assert [e.data["amount"] for e in store.read_stream(session, "tally-c")] == [30]
        assert store.stream_version(session, "tally-a") == 4
        read = store.read_after(session, 0)
    assert [(e.subject, e.streamversion, e.position) for e in read[3:]] == [
        (e.subject, e.streamversion, e.position) for e in appended
    ]
    made.database.dispose()
