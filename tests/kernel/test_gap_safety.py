"""Gap safety on PostgreSQL: many concurrent writers, a reader walking positions, and the relay.

A reader that has passed position N must never miss an event committed later with a position below N.
Writers hold their transactions open for a moment after appending, which is exactly what would make a
plain sequence hand out positions out of commit order.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from juwei.consumer import dead_letter_topic
from juwei.events import Envelope
from tests.kernel.harness import on_topic, runtime
from tests.kernel.sample import Tallied, definitions

WRITERS = 8
PER_WRITER = 500


@pytest.mark.parametrize("new_database", ["postgresql"], indirect=True)
def test_concurrent_writers_never_leave_a_reader_behind_and_the_relay_publishes_all(
    new_database, suffix: str, kafka: str, broker
) -> None:
    desk, _ = definitions(suffix)
    if broker is not None:
        broker.create_topics([desk.topic, dead_letter_topic(desk.topic)])
    made = runtime(desk, new_database(), kafka)
    store = made.store
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(number: int) -> None:
        rng = random.Random(number)
        try:
            for i in range(PER_WRITER):
                with made.database.unit_of_work() as session:
                    store.append(
                        session,
                        f"tally-w{number}",
                        [Tallied(building=str(number), amount=1, note=str(i))],
                        expected_version=i,
                        compound="c1",
                    )
                    if rng.random() < 0.05:
                        time.sleep(0.002)  # keep the transaction open after drawing a position
        except BaseException as exc:
            errors.append(exc)

    seen: list[int] = []

    def reader() -> None:
        after = 0
        while True:
            finished = done.is_set()
            with made.database.reading() as session:
                batch = store.read_after(session, after, limit=1000)
            seen.extend(e.position or 0 for e in batch)
            if batch:
                after = batch[-1].position or after
            elif finished:
                return

    relay = made.make_relay()
    stop = threading.Event()
    relay_thread = threading.Thread(target=relay.run, args=(stop,))
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    relay_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    deadline = time.monotonic() + 60
    while relay.backlog() and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    relay_thread.join()
    assert not errors, errors

    with made.database.reading() as session:
        everything = [e.position for e in store.read_after(session, 0, limit=WRITERS * PER_WRITER + 1)]
    assert len(everything) == WRITERS * PER_WRITER
    # The walking reader saw every committed position, once, in order: nothing was skipped behind it.
    assert seen == everything

    per_stream: dict[str, list[int]] = {}
    for record in on_topic(kafka, desk.topic):
        envelope = Envelope.from_kafka(record.value, record.headers)
        per_stream.setdefault(envelope.subject, []).append(envelope.streamversion)
    assert sum(len(v) for v in per_stream.values()) == WRITERS * PER_WRITER
    for versions in per_stream.values():
        assert versions == list(range(1, PER_WRITER + 1))  # none skipped, per-stream order kept
    made.database.dispose()
