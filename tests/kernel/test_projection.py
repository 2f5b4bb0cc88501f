"""Read models: rebuilt from zero they equal the live ones; readers keep the old one until the rebuild is done."""

from __future__ import annotations

import threading

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from juwei.consumer import dead_letter_topic
from juwei.events import Envelope
from juwei.projection import Projector, upsert
from juwei.repository import Repository
from juwei.session import Session
from tests.conftest import both_databases
from tests.kernel.harness import runtime, wait_for
from tests.kernel.sample import DeskTotals, Tally, board_totals, definitions, desk_totals


def _fill(made, count: int) -> None:
    repo = Repository(made.store, Tally)
    for i in range(count):
        with made.database.unit_of_work() as session:
            tally = repo.load(session, str(i % 6))
            tally.add(i % 11 + 1)
            repo.save(session, tally, compound="c1")


def _rows(made, table) -> list[tuple]:
    with made.database.reading() as session:
        return [tuple(row) for row in session.execute(select(table).order_by(table.c.building)).all()]


@both_databases
def test_rebuild_of_own_and_received_events_equals_the_live_read_models(
    new_database, suffix: str, kafka: str, broker
) -> None:
    desk, board = definitions(suffix)
    if broker is not None:
        broker.create_topics([desk.topic, dead_letter_topic(desk.topic)])
    desk_side = runtime(desk, new_database("desk"), kafka)
    board_side = runtime(board, new_database("board"), kafka)
    _fill(desk_side, 120)
    relay = desk_side.make_relay()
    relay.publish_once()
    relay.close()
    consumer = board_side.make_consumer()
    consumer.consumer_overrides = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    wait_for(
        lambda: (consumer.poll_once(200), _rows(board_side, board_totals))[1] == _rows(desk_side, desk_totals),
        what="the board to catch up",
    )
    consumer.close()
    live_desk, live_board = _rows(desk_side, desk_totals), _rows(board_side, board_totals)

    assert desk_side.projector.rebuild() == 120
    assert board_side.projector.rebuild(["board_totals"]) == 120
    assert _rows(desk_side, desk_totals) == live_desk
    assert _rows(board_side, board_totals) == live_board
    assert desk_side.projector.checkpoints()["desk_totals"][0] == 120
    assert board_side.projector.checkpoints()["board_totals"][1] == 120


class PausingTotals(DeskTotals):
    """Stops half-way through a rebuild until the test has looked at what readers see."""

    def __init__(self, paused: threading.Event, go_on: threading.Event) -> None:
        self.paused, self.go_on, self.applied = paused, go_on, 0

    def apply(self, session: Session, envelope: Envelope) -> None:
        super().apply(session, envelope)
        self.applied += 1
        if self.applied == 20:
            self.paused.set()
            self.go_on.wait(30)


@both_databases
def test_readers_keep_the_old_model_while_a_rebuild_runs(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    _fill(made, 60)
    before = _rows(made, desk_totals)
    paused, go_on = threading.Event(), threading.Event()
    rebuilder = Projector(made.database, made.store, [PausingTotals(paused, go_on)])
    thread = threading.Thread(target=rebuilder.rebuild)
    thread.start()
    try:
        assert paused.wait(30)
        assert _rows(made, desk_totals) == before  # not emptied, not half-built
    finally:
        go_on.set()
        thread.join(30)
    assert _rows(made, desk_totals) == before


@both_databases
def test_upsert_adds_to_counters_and_sets_the_rest_by_primary_key_or_by_other_keys(new_database) -> None:
    metadata = MetaData()
    counts = Table(
        "upsert_counts",
        metadata,
        Column("building", String(10), primary_key=True),
        Column("day", String(10), primary_key=True),
        Column("count", Integer, nullable=False),
        Column("note", String(20)),
    )
    engine = create_engine(new_database("upsert"))
    metadata.create_all(engine)
    with engine.begin() as connection:
        session = Session(connection)
        for building, count, note in (("1", 2, "a"), ("1", 3, "b"), ("2", 5, "c"), ("1", 4, "d")):
            upsert(session, counts, {"building": building, "day": "d1"}, {"count": count, "note": note}, add=("count",))
        # Keys that are not the primary key take the UPDATE-then-INSERT path, with the same sums.
        for note, count in (("x", 7), ("x", 1)):
            upsert(session, counts, {"note": note}, {"building": "3", "day": "d1", "count": count}, add=("count",))
        upsert(session, counts, {"building": "2", "day": "d1"}, {"count": 9})  # no add: set
    with engine.connect() as connection:
        rows = sorted(tuple(row) for row in connection.execute(select(counts)))
    engine.dispose()
    assert rows == [("1", "d1", 9, "d"), ("2", "d1", 9, "c"), ("3", "d1", 8, "x")]
