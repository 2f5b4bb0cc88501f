"""The rebuild's fast read and write paths give what the checked paths give."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import Field
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, bindparam, insert, select, update

from juwei.database import Database
from juwei.events import DomainEvent, Envelope, EventRegistry, UnknownEventType, parse_time, stored_envelope
from juwei.projection import Projection, Projector, replaying, write_many
from juwei.session import Session
from tests.conftest import both_databases
from tests.kernel.harness import runtime
from tests.kernel.sample import Tallied, definitions


class Counted(DomainEvent):
    event_type = "juwei.test.Counted"
    version = 2
    tally: str
    amount: int
    note: str | None = None
    tags: list[str] = Field(default_factory=list)
    at: datetime


def _registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(Counted)

    @registry.upcaster("juwei.test.Counted.v1", "juwei.test.Counted.v2")
    def _v1(data: dict) -> dict:
        data["amount"] = data.pop("count")  # upcasters get a copy
        return data

    return registry


def test_stored_envelope_equals_the_checked_constructor() -> None:
    values = dict(
        id="e1",
        source="/juwei/desk",
        type="juwei.test.Counted.v2",
        subject="tally-1",
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        data={"tally": "1", "amount": 3},
        compound="c1",
        streamversion=4,
        position=9,
        building="b1",
        traceparent=None,
        private={"secret": "x"},
    )
    fast, checked = stored_envelope(**values), Envelope(**values)
    assert fast == checked and fast.__dict__ == checked.__dict__
    assert fast.with_position(10).position == 10
    body = json.loads(json.dumps(checked.to_cloudevent()))
    assert Envelope.from_stored(body).__dict__ == {**Envelope.from_cloudevent(body).__dict__}


def test_parse_time_reads_z_offsets_and_naive_text_as_utc() -> None:
    assert parse_time("2026-01-02T03:04:05.123456Z") == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05Z").tzinfo is UTC
    assert parse_time("2026-01-02T11:04:05+08:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_trusted_payloads_are_upcast_and_completed_like_decoded_ones() -> None:
    registry = _registry()
    at = "2026-01-02T03:04:05Z"
    current, data = registry.trusted("juwei.test.Counted.v1", {"tally": "1", "count": 2, "at": at})
    assert current == "juwei.test.Counted.v2"
    assert data == {"tally": "1", "amount": 2, "note": None, "tags": [], "at": at}
    assert data == registry.decode("juwei.test.Counted.v1", {"tally": "1", "count": 2, "at": at}).model_dump(
        mode="json"
    )
    whole = {"tally": "1", "amount": 2, "note": "n", "tags": ["a"], "at": at}
    assert registry.trusted("juwei.test.Counted.v2", whole)[1] is whole  # nothing missing: no copy
    first = registry.trusted("juwei.test.Counted.v2", {"tally": "1", "amount": 1, "at": at})[1]
    first["tags"].append("x")
    assert registry.trusted("juwei.test.Counted.v2", {"tally": "1", "amount": 1, "at": at})[1]["tags"] == []
    with pytest.raises(UnknownEventType):
        registry.trusted("juwei.test.Unheard.v1", {})


written = MetaData()


def _marks(name: str) -> Table:
    return Table(
        name,
        written,
        Column("mark", String(20), primary_key=True),
        Column("count", Integer, nullable=False),
        Column("seen", Boolean, nullable=False),
        Column("at", DateTime(timezone=True), nullable=True),
    )


marks, marks_checked = _marks("test_write_many_marks"), _marks("test_write_many_marks_checked")
defaulted = Table(
    "test_write_many_defaulted",
    written,
    Column("mark", String(20), primary_key=True),
    Column("count", Integer, nullable=False, default=7),
)
_INSERT_MARKS = insert(marks)
_MARK_SEEN = update(marks).where(marks.c.mark == bindparam("b_mark")).values(seen=bindparam("b_seen"))
_INSERT_DEFAULTED = insert(defaulted)


@both_databases
def test_write_many_stores_what_session_execute_stores(new_database) -> None:
    database = Database(new_database())
    written.create_all(database.engine)
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=8)))
    rows = [{"mark": f"m{i}", "count": i, "seen": i % 2 == 0, "at": at if i % 3 else None} for i in range(5)]
    seen = [{"b_mark": "m1", "b_seen": True}, {"b_mark": "m4", "b_seen": True}]
    with database.unit_of_work() as session:
        write_many(session, _INSERT_MARKS, rows)
        write_many(session, _MARK_SEEN, seen)
        session.execute(insert(marks_checked), rows)
        session.execute(
            update(marks_checked).where(marks_checked.c.mark == bindparam("b_mark")).values(seen=bindparam("b_seen")),
            seen,
        )
        write_many(session, _INSERT_DEFAULTED, [{"mark": "d1"}, {"mark": "d2"}])  # SQLAlchemy fills the default
    with database.reading() as session:
        # As the driver hands the rows back: SQLite's stored text and integers, not SQLAlchemy's reading of them.
        fast, checked = (
            session.connection().exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY mark").all()
            for table in (marks, marks_checked)
        )
        filled = list(session.execute(select(defaulted.c["count"])).scalars())
    assert fast == checked
    assert [row[2] for row in fast] == [1, 1, 1, 0, 1] or [row[2] for row in fast] == [True, True, True, False, True]
    assert filled == [7, 7]
    database.dispose()


class _Watching(Projection):
    name = "watching"
    types = frozenset({Tallied.type_name()})

    def __init__(self) -> None:
        self.seen: list[tuple[bool, int]] = []

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.seen.append((replaying(session), gc.get_freeze_count()))


def test_a_rebuild_replays_trusted_and_leaves_nothing_frozen(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    with made.database.unit_of_work() as session:
        made.store.append(
            session, "tally-1", [Tallied(building="1", amount=n) for n in (1, 2)], expected_version=0, compound="c1"
        )
    watching = _Watching()
    projector = Projector(made.database, made.store, [watching])
    with made.database.unit_of_work() as session:
        watching.apply(session, made.store.read_after(session, 0)[0])
    frozen_before = gc.get_freeze_count()
    assert projector.rebuild() == 2
    assert watching.seen[0] == (False, frozen_before)
    assert [trusted for trusted, _frozen in watching.seen[1:]] == [True, True]
    assert all(frozen > frozen_before for _trusted, frozen in watching.seen[1:])
    assert gc.get_freeze_count() == frozen_before
    with made.database.reading() as session:
        assert not replaying(session)
    made.database.dispose()
