"""The Python client (``clients/python``) against the four services as real processes on the real broker: typed
reads and writes, problems as ``ProblemError``, the feed's pages and SSE tail, and the follower killed and
restarted (a new process from the saved position) and reconnecting to a restarted service with Last-Event-ID."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import juwei_client
import pytest
from juwei_client import Event, FilePosition, Follower, Notify, ProblemError, Residents, Supplies

from tests.e2e.conftest import RunningSuite, _answers, serve_suite, start_groups_at_the_end
from tests.kernel.harness import ROOT, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]
C = "c1"
FOLLOWER = Path(__file__).with_name("follower_process.py")


def _ok(answer: httpx.Response) -> dict:
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, kafka: str, broker) -> Iterator[RunningSuite]:
    """The four services, and what the tests read: two buildings, a household of two, a point, a round whose
    pooled tube was positive and one resident's re-test awaiting its result, a batch of supplies."""
    start_groups_at_the_end(kafka, broker)
    with serve_suite(tmp_path_factory.mktemp("suite"), kafka, JUWEI_TODAY="2022-04-12") as running:
        with httpx.Client(headers={"X-API-Key": running.key}, timeout=30) as http:
            residents, testing, supplies = (running.urls[s] for s in ("residents", "testing", "supplies"))
            for n in (1, 2):
                _ok(http.post(f"{residents}/compounds/{C}/buildings", json=_building(n)))
            _ok(http.post(f"{residents}/compounds/{C}/households", json={"household": "h1-0101", "building": "b1",
                                                                          "floor": 1, "room": 1}))  # fmt: skip
            for resident, name, year in (("r1", "张三", 1950), ("r2", "李四", 1985)):
                body = {"resident": resident, "name": name, "birth_year": year, "representative": resident == "r1"}
                _ok(http.post(f"{residents}/compounds/{C}/households/h1-0101/residents", json=body))
            point = {"point": "p1", "name": "Point 1", "location": "north gate", "throughput": 2}
            _ok(http.post(f"{testing}/compounds/{C}/points", json=point))

            def testing_knows_both() -> bool:
                proposal = http.get(f"{testing}/compounds/{C}/assignment/proposal").json()["points"]
                return sum(p["residents"] for p in proposal) == 2

            wait_for(testing_knows_both, timeout=120, what="testing to hear of both residents over Kafka")
            round_ = {"round": "pcr-0412", "kind": "pcr", "starts_at": "2022-04-12T07:00", "points": ["p1"]}
            _ok(http.post(f"{testing}/compounds/{C}/rounds", json=round_))
            pooled = {"tube": "T0412-001", "residents": ["r1", "r2"], "point": "p1"}
            _ok(http.post(f"{testing}/compounds/{C}/rounds/pcr-0412/samples", json=pooled))
            _ok(http.post(f"{testing}/compounds/{C}/tubes/T0412-001/result", json={"result": "positive"}))
            retest = {"tube": "S0412-001", "residents": ["r1"], "point": "p1"}  # r1 re-tested alone; r2 not yet
            _ok(http.post(f"{testing}/compounds/{C}/rounds/pcr-0412/samples", json=retest))
            items = [{"item": "vegetables", "quantity": 40, "unit": "box"}]
            batch = {"batch": "gov-0412", "source": "government", "label": "保供 vegetables", "items": items,
                     "whole_compound": True}  # fmt: skip
            _ok(http.post(f"{supplies}/compounds/{C}/batches", json=batch))
        yield running


def _building(n: int) -> dict:
    return {"building": f"b{n}", "number": str(n), "floors": 6, "rooms_per_floor": 2, "lifts": 1, "lift_capacity": 8}


def _register(running: RunningSuite, n: int) -> None:
    answer = httpx.post(
        f"{running.urls['residents']}/compounds/{C}/buildings",
        json=_building(n),
        headers={"X-API-Key": running.key},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text


def test_typed_reads_and_a_recorded_result(suite: RunningSuite) -> None:
    with Residents(suite.urls["residents"], suite.key) as residents:
        buildings = {b.building: b for b in residents.buildings(C)}
        assert set(buildings) >= {"b1", "b2"}
        assert (buildings["b1"].floors, buildings["b1"].households, buildings["b1"].residents) == (6, 1, 2)
        [household] = residents.households(C, "b1")
        assert household.household == "h1-0101" and household.representative == "r1"
        assert {m.resident: m.birth_year for m in household.members} == {"r1": 1950, "r2": 1985}
        assert all(m.masked and m.name not in ("张三", "李四") for m in household.members)  # masked unless revealed
        assert residents.whoami().role == "district-operator"
    with juwei_client.Testing(suite.urls["testing"], suite.key) as testing:
        [round_] = testing.rounds(C)
        assert (round_.round, round_.kind, round_.points) == ("pcr-0412", "pcr", ["p1"])
        assert testing.round(C, "pcr-0412") == round_
        pooled = testing.tube(C, "T0412-001")
        assert (pooled.residents, pooled.kind, pooled.result) == (["r1", "r2"], "pooled", "positive")
        assert testing.tube(C, "S0412-001").result is None
        recorded = testing.record_result(C, "pcr-0412", "r1", "negative", idempotency_key="client-test-r1-result")
        assert (recorded.resident, recorded.tube, recorded.result) == ("r1", "S0412-001", "negative")
        # The same action sent again (a client that never heard the answer): the first answer, nothing twice.
        again = testing.record_result(C, "pcr-0412", "r1", "negative", idempotency_key="client-test-r1-result")
        assert again == recorded
        counts = testing.counts(C, "pcr-0412")
        assert counts.residents == 2
        assert [(b.building, b.negative, b.to_resample) for b in counts.buildings] == [("b1", 1, 1)]
    with Supplies(suite.urls["supplies"], suite.key) as supplies:
        [batch] = supplies.batches(C)
        assert (batch.batch, batch.source, batch.items[0]["item"]) == ("gov-0412", "government", "vegetables")
        assert supplies.batch(C, "gov-0412").label == "保供 vegetables"
        assert supplies.progress(C, "gov-0412").delivered == 0


def test_questions_asked_grouped_and_answered(suite: RunningSuite) -> None:
    with Notify(suite.urls["notify"], suite.key) as notify:

        def notify_knows_b1() -> bool:
            try:
                notify.ask(C, "b1", "什么时候可以出门？", idempotency_key="client-test-question-1")
            except ProblemError as refused:
                assert refused.status in (404, 422), refused  # the building not heard of yet over Kafka
                return False
            return True

        wait_for(notify_knows_b1, timeout=120, what="notify to hear of building b1")
        asked = notify.ask(C, "b1", "什么时候可以出门？", idempotency_key="client-test-question-1")
        [group] = notify.question_groups(C)
        assert group.question_group == asked.question_group and group.buildings == {"b1": 1}
        answered = notify.answer(C, group.question_group, "什么时候可以出门？", "连续 14 天无新增后。",
                                 policy_points=["防范区可以出门"])  # fmt: skip
        assert answered.buildings == ["b1"] and answered.questions == 1
        [entry] = notify.faq(C)
        assert entry.answer == answered.answer and entry.policy_points == ["防范区可以出门"]
        assert notify.question_groups(C) == []  # answered: no longer open


def test_error_answers_are_problem_errors(suite: RunningSuite) -> None:
    with juwei_client.Testing(suite.urls["testing"], suite.key, language="zh-CN") as testing:
        with pytest.raises(ProblemError) as refused:
            testing.record_result(C, "pcr-0412", "r2", "negative")  # r2 gave no sample
        problem = refused.value.problem
        assert (problem.status, problem.code) == (409, "no-sample-waiting")
        assert problem.type == "urn:juwei:problem:no-sample-waiting" and "r2" in (problem.detail or "")
        assert problem.title and problem.instance
        with pytest.raises(ProblemError) as invalid:
            testing.record_result(C, "pcr-0412", "r1", "maybe")
        assert (invalid.value.status, invalid.value.code) == (422, "validation")
        assert invalid.value.problem.extensions["errors"][0]["location"] == ["body", "result"]
        with pytest.raises(ProblemError) as unknown_round:
            testing.round(C, "pcr-0413")
        assert unknown_round.value.status == 404 and unknown_round.value.type.startswith("urn:juwei:problem:")
    with Residents(suite.urls["residents"], "jw_nobody_" + "x" * 43, language="zh-CN") as stranger:
        with pytest.raises(ProblemError) as unknown:
            stranger.buildings(C)
        assert (unknown.value.status, unknown.value.code) == (401, "not-authenticated")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in unknown.value.title)  # worded in Chinese, as asked


def test_feed_pages_and_stream_resume_after_last_event_id(suite: RunningSuite) -> None:
    with Residents(suite.urls["residents"], suite.key) as residents:
        everything = list(residents.feed.events(limit=3))  # pages of 3: next_after carries on
        positions = [e.position for e in everything]
        assert positions == sorted(set(positions)) and len(positions) >= 5
        assert everything[0].type.startswith("juwei.residents.") and everything[0].compound == C
        middle = positions[len(positions) // 2]
        stream = residents.feed.stream(last_event_id=middle)
        try:
            resumed = [next(stream) for _ in range(len([p for p in positions if p > middle]))]
        finally:
            stream.close()
        assert [e.position for e in resumed] == [p for p in positions if p > middle]
        assert [e.id for e in resumed] == [e.id for e in everything if e.position > middle]


def _follower(running: RunningSuite, position: Path, output: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(FOLLOWER), running.urls["residents"], running.key, str(position), str(output)]
    return subprocess.Popen([*command, *extra], env=env, cwd=ROOT)


def _lines(path: Path) -> list[int]:
    return [int(line.split()[0]) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_killed_follower_restarted_from_its_position_file_handles_every_event_once_in_order(
    suite: RunningSuite, tmp_path: Path
) -> None:
    with Residents(suite.urls["residents"], suite.key) as residents:
        before = len(list(residents.feed.events()))
        position, output = tmp_path / "residents.position", tmp_path / "handled.txt"
        # The first follower pages through what there is (2 a page), then hears 2 new events live and is
        # killed inside the handler of the third.
        first = _follower(suite, position, output, "--die-at", str(before + 2))
        wait_for(lambda: len(_lines(output)) == before, timeout=60, what="the follower to catch up")
        for n in range(10, 15):
            _register(suite, n)
        assert first.wait(timeout=60) == -9, "the follower was to die by SIGKILL"
        handled = _lines(output)
        assert len(handled) == before + 2
        assert FilePosition(position).load() == handled[-1]  # saved after the handler returned, not before
        second = _follower(suite, position, output, "--stop-at", str(before + 5))
        assert second.wait(timeout=60) == 0
        everything = [e.position for e in residents.feed.events()]
        assert len(everything) == before + 5
        assert _lines(output) == everything  # each once, in order: the one it died on handled by the second


def test_the_follower_reconnects_to_a_restarted_service_with_last_event_id(suite: RunningSuite, tmp_path: Path) -> None:
    sent: list[dict[str, str]] = []

    def record(request: httpx.Request) -> None:
        if request.url.path == "/events/stream":
            sent.append(dict(request.headers))

    http = httpx.Client(event_hooks={"request": [record]})
    residents = Residents(suite.urls["residents"], suite.key, client=http)
    handled: list[Event] = []
    follower = Follower(residents.feed, handled.append, FilePosition(tmp_path / "p"), reconnect=0.2, reconnect_max=1)
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    try:
        head = [e.position for e in residents.feed.events()]
        wait_for(lambda: [e.position for e in handled] == head and sent, timeout=60, what="the follower at the head")
        last = follower.position
        _restart(suite, "residents")
        _register(suite, 20)
        wait_for(lambda: len(handled) == len(head) + 1, timeout=120, what="the event after the restart")
        assert handled[-1].data.get("building", "").endswith("b20")
        assert follower.reconnects >= 1
        assert any(h.get("last-event-id") == str(last) for h in sent[1:]), sent
        assert [e.position for e in handled] == [e.position for e in residents.feed.events()]
    finally:
        follower.stop()
        _register(suite, 21)  # an event wakes the stream so that the follower sees it was stopped
        thread.join(timeout=30)
        http.close()
    assert not thread.is_alive()


def _restart(running: RunningSuite, name: str) -> None:
    """SIGTERM the service's process and start it again on the same port and database."""
    process = running.processes[name]
    process.terminate()
    process.wait(timeout=30)
    log = (running.data_dir / "logs" / f"{name}.log").open("ab")
    running.processes[name] = subprocess.Popen(
        [sys.executable, "-m", "juwei.cli", "serve", name],
        cwd=ROOT,
        env={**os.environ, **running.env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: _answers(f"{running.urls[name]}/healthz"), timeout=90, what=f"{name} to answer again")
