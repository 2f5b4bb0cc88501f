"""The relay's RecordBuilder gives the very bytes ``binary_headers`` gives, row after row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from kafka.partitioner.default import DefaultPartitioner
from sqlalchemy import select

from juwei.database import Database
from juwei.events import DomainEvent, EventRegistry, binary_headers, current_traceparent
from juwei.migrate import upgrade
from juwei.relay import KeyPartitions, RecordBuilder, _batch_query, record_from_row
from juwei.store import EventStore, events_table
from tests.conftest import both_databases

SOURCE = "/juwei/desk"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
registry = EventRegistry()


@registry.register
class Counted(DomainEvent):
    """Concerns a building: the record is keyed by it and carries ``ce_building``."""

    event_type = "juwei.recordtest.Counted"
    building: str
    amount: int


@registry.register
class Noted(DomainEvent):
    """Concerns no building: the record is keyed by its stream and has no ``ce_building``."""

    event_type = "juwei.recordtest.Noted"
    text: str


def expected(row: Any, source: str = SOURCE) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """What the relay has always sent, spelled out with ``binary_headers``."""
    extensions = {
        "compound": row.compound,
        "streamversion": row.version,
        "position": row.position,
        "building": row.building,
        "traceparent": row.traceparent,
    }
    headers = binary_headers(row.id, source, row.type, row.stream_id, row.time, extensions)
    return (row.building or row.stream_id).encode(), row.data.encode(), headers


def assert_identical(rows: Sequence[Any], source: str = SOURCE) -> None:
    build = RecordBuilder(source)
    for row in rows:
        wanted = expected(row, source)
        assert build(row) == wanted
        assert record_from_row(row, source) == wanted


def row(**changes: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "position": 42,
        "id": "0f6b2c5e-1f0a-4d43-9a57-3b7f1b8c1d01",
        "stream_id": "tally-7",
        "version": 3,
        "compound": "c1",
        "type": "juwei.recordtest.Counted.v1",
        "building": "c1:7",
        "time": datetime(2022, 4, 10, 8, 0, 0, 123456),
        "data": '{"building":"c1:7","amount":3,"note":"楼栋"}',
        "traceparent": None,
    }
    values.update(changes)
    return SimpleNamespace(**values)


@both_databases
def test_rows_read_back_from_the_table_build_identical_records(new_database) -> None:
    database = Database(new_database("records"))
    upgrade(database)
    store = EventStore(SOURCE, registry)
    with database.unit_of_work() as session:
        # One append shares its time: the builder reuses ce_time within it and must notice the next append's.
        store.append(
            session,
            "count-1",
            [Counted(building="c1:1", amount=n) for n in range(3)],
            expected_version=0,
            compound="c1",
        )
        store.append(
            session, "note-1", [Noted(text="没有楼栋"), Noted(text="second")], expected_version=0, compound="c1"
        )
    token = current_traceparent.set(TRACEPARENT)
    try:
        with database.unit_of_work() as session:
            store.append(session, "count-2", [Counted(building="c1:2", amount=5)], expected_version=0, compound="c2")
            store.append(session, "note-2", [Noted(text="traced")], expected_version=0, compound="c2")
    finally:
        current_traceparent.reset(token)
    with database.unit_of_work() as session:  # a whole second: SQLite stores ".000000", ISO text leaves it out
        session.execute(
            events_table.update().where(events_table.c.position == 1).values(time=datetime(2022, 4, 10, 8, tzinfo=UTC))
        )
    with database.reading() as session:
        rows = session.execute(select(events_table).order_by(events_table.c.position)).all()
        connection = session.connection()
        # What the relay itself reads: ten columns, and on SQLite the time as its stored text.
        read_by_relay = connection.execute(_batch_query(connection.dialect.name), {"after": 0, "limit": 100}).all()
    database.dispose()

    assert [RecordBuilder(SOURCE)(r) for r in read_by_relay] == [record_from_row(r, SOURCE) for r in rows]
    assert dict(RecordBuilder(SOURCE)(read_by_relay[0])[2])["ce_time"] == b"2022-04-10T08:00:00Z"
    assert len(rows) == 7
    assert {r.building is None for r in rows} == {True, False}
    assert {r.traceparent is None for r in rows} == {True, False}
    assert len({r.time for r in rows}) >= 2
    assert_identical(rows)
    traced = RecordBuilder(SOURCE)(rows[-1])[2]
    assert ("ce_traceparent", TRACEPARENT.encode()) in traced
    assert not any(name == "ce_building" for name, _ in traced)


def test_with_and_without_building_and_traceparent() -> None:
    rows = [
        row(),
        row(building=None, stream_id="household-c1:h1-0101", type="juwei.recordtest.Noted.v1", data='{"text":"x"}'),
        row(traceparent=TRACEPARENT, position=43, version=4),
        row(building=None, traceparent=TRACEPARENT, position=44, version=1, stream_id="note-9"),
        row(building="", position=45),  # an empty building is sent as such, and the key falls back to the stream
    ]
    assert_identical(rows)
    key, _value, headers = RecordBuilder(SOURCE)(rows[4])
    assert key == b"tally-7"
    assert ("ce_building", b"") in headers


def test_naive_and_aware_times_in_any_order() -> None:
    naive = datetime(2022, 4, 10, 8, 0, 0, 123456)
    aware_utc = naive.replace(tzinfo=UTC)
    shanghai = timezone(timedelta(hours=8))
    same_instant_elsewhere = aware_utc.astimezone(shanghai)
    naive_as_if_shanghai = naive + timedelta(hours=8)  # same wall clock as the Shanghai time, but naive
    times = [
        naive,
        naive,
        aware_utc,
        aware_utc,
        same_instant_elsewhere,
        naive_as_if_shanghai,
        naive,
        naive + timedelta(microseconds=1),
        aware_utc.replace(microsecond=0),
        naive.replace(microsecond=0),
        same_instant_elsewhere,
    ]
    rows = [row(time=moment, position=n, version=n) for n, moment in enumerate(times, start=1)]
    assert_identical(rows)
    texts = [dict(RecordBuilder(SOURCE)(r)[2])["ce_time"] for r in rows]
    assert texts[0] == texts[2] == texts[4] == b"2022-04-10T08:00:00.123456Z"
    assert texts[5] == b"2022-04-10T16:00:00.123456Z"
    assert texts[8] == texts[9] == b"2022-04-10T08:00:00Z"


def test_one_builder_serves_a_stream_of_sources_rows_and_the_constants_are_its_own() -> None:
    rows = [row(position=n, version=n, time=datetime(2022, 4, 10, 8, n % 3)) for n in range(1, 50)]
    assert_identical(rows, "/juwei/testing")
    first = RecordBuilder("/juwei/testing")(rows[0])[2]
    other = RecordBuilder("/juwei/notify")(rows[0])[2]
    assert dict(first)["ce_source"] == b"/juwei/testing"
    assert dict(other)["ce_source"] == b"/juwei/notify"


class _Cluster:
    """What kafka-python's DefaultPartitioner asks of the cluster metadata."""

    def __init__(self, partitions: set[int]) -> None:
        self.partitions = partitions

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


def test_the_relay_places_every_key_where_kafkas_default_partitioner_does() -> None:
    remembered = KeyPartitions(limit=50)  # small, so the bound is crossed and the cache cleared on the way
    default = DefaultPartitioner()
    keys = [f"compound-{c}:{kind}{n}".encode() for c in range(3) for kind in ("b", "household-") for n in range(40)]
    for count in (1, 3, 6, 12):
        partitions = set(range(count))
        for key in keys * 2:
            expected = default.partition("t", key, key, b"", b"", _Cluster(partitions))
            assert remembered(key, sorted(partitions)) == expected
