"""A lab file of 5,000 results imported once, through HTTP, on both databases: the register built from
residents' events on the real Kafka, 5,000 tubes uploaded by a sampling point, then the lab's file. Every tube is
settled by the same rules as a plate (a positive pool re-tested, invalid tubes re-called, a positive individual
test confirmed as a case), what it recorded is published by the relay to the real Kafka with ids only, and the
same file again adds nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from juwei.consumer import dead_letter_topic
from juwei.events import Envelope
from juwei.service import create_app
from juwei.store import events_table
from tests.conftest import both_databases
from tests.kernel.harness import published, relay_everything
from tests.testing.compound import make_compound
from tests.testing.conftest import Testing, make_testing, open_points
from tests.testing.mass_round import consume_register, join_at_the_end, publish

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]  # 5,000 tubes sampled through the API first
RESULTS = 5000


def _event_count(testing: Testing) -> int:
    with testing.runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar() or 0)


def _tubes(testing: Testing, tubes: dict[str, str]) -> None:
    """One resident a tube, uploaded by a sampling point a hundred tubes at a time."""
    items = [{"tube": tube, "residents": [resident]} for tube, resident in tubes.items()]
    for start in range(0, len(items), 100):
        testing.ok("POST", "/rounds/r1/tubes", json={"point": "p1", "tubes": items[start : start + 100]})


@both_databases
def test_a_lab_file_of_5000_results_imported_once(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str
) -> None:
    compound_id = f"lab{suffix}"  # topics are shared between tests: this compound is ours alone
    if broker is not None:
        broker.create_topics(["juwei.residents", "juwei.testing", dead_letter_topic("juwei.residents")])
    compound = make_compound(compound_id, buildings=25, residents=RESULTS)
    runtime = make_testing(new_database("testing"), tmp_path, kafka=kafka)
    # The register as testing builds it in production: residents' events off Kafka, a poll at a time.
    consumer = join_at_the_end(runtime, f"testing-lab-{suffix}")
    assert publish(kafka, "juwei.residents", compound.envelopes, granted=runtime) == len(compound.envelopes)
    consume_register(consumer, runtime, compound_id, expected=RESULTS)
    people = list(compound.residents)
    with TestClient(create_app(runtime, background=False)) as client:
        testing = Testing(client, runtime, compound=compound_id)
        open_points(testing, 2)
        testing.ok("POST", "/assignment/proposal")
        # One swab a tube: a file of 5,000 results is 5,000 tubes.
        round_ = {"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"], "pool_size": 1}
        testing.ok("POST", "/rounds", json=round_)
        # Ten residents came back positive on an earlier plate: they give individual samples for the file.
        _tubes(testing, {f"Q{n}": people[n] for n in range(10)})
        testing.ok(
            "POST", "/plates/L0/results", json={"results": [{"tube": f"Q{n}", "result": "positive"} for n in range(10)]}
        )
        tubes = {f"S{n}": people[n] for n in range(10)} | {f"T{n}": people[n] for n in range(10, RESULTS)}
        _tubes(testing, tubes)

        outcome = {"S0": "阳性", "S1": "无效", "T10": "positive", "T11": "invalid"}
        lines = ["试管号,检测结果,检测时间,板号,孔位"]
        for index, tube in enumerate(tubes):
            well = f"{'ABCDEFGH'[index % 96 // 12]}{index % 12 + 1}"
            lines.append(f"{tube},{outcome.get(tube, '阴性')},2022-04-12 19:{index % 60:02d},P{index // 96 + 1},{well}")
        content = ("\n".join(lines) + "\n").encode()
        assert len(lines) == RESULTS + 1

        started = time.perf_counter()
        answer = client.post(
            f"/compounds/{compound_id}/lab-files",
            headers={**testing.staff, "Content-Type": "text/csv"},
            content=content,
        )
        seconds = time.perf_counter() - started
        assert answer.status_code == 200, answer.text
        print(f"\n{RESULTS} results imported in {seconds:.1f} s ({testing.runtime.database.engine.dialect.name})")
        body = answer.json()
        assert (body["rows"], body["recorded"], body["repeated"], body["already_imported"]) == (
            RESULTS,
            RESULTS,
            [],
            False,
        )
        assert body["results"] == {"negative": RESULTS - 4, "positive": 2, "invalid": 2}
        assert (body["retests"], body["recalled"]) == (["T10"], ["S1", "T11"])
        assert [(c["tube"], c["resident"]) for c in body["cases"]] == [("S0", people[0])]
        assert len(body["plates"]) == -(-RESULTS // 96)
        counts = testing.ok("GET", "/rounds/r1/counts")
        buildings = counts["buildings"]
        assert (counts["residents"], counts["tested"]) == (RESULTS, RESULTS)
        assert sum(b["positive"] for b in buildings) == 1 and sum(b["negative"] for b in buildings) == RESULTS - 4
        assert sum(b["to_resample"] for b in buildings) == 3 and sum(b["awaiting_result"] for b in buildings) == 0
        case = body["cases"][0]["case"]
        assert testing.ok("GET", f"/cases/{case}")["resident"] == people[0]

        # The same file again: nothing new is recorded, and the answer says so.
        before = _event_count(testing)
        again = client.post(
            f"/compounds/{compound_id}/lab-files",
            headers={**testing.staff, "Content-Type": "text/csv"},
            content=content,
        ).json()
        assert again["already_imported"] is True and again["recorded"] == 0 and again["rows"] == RESULTS
        assert _event_count(testing) == before

    # What testing publishes: each result as a plate's would be, ids only, and the file once.
    records = published(kafka, "juwei.testing", lambda: relay_everything(runtime), compound_id)
    ours = [Envelope.from_kafka(record.value, record.headers) for record in records]
    kinds = [envelope.type.split(".")[2] for envelope in ours]
    assert kinds.count("TubeResulted") == 10 + RESULTS - 10  # the earlier plate, then the file's single swabs
    assert kinds.count("IndividualResultRecorded") == 10
    assert kinds.count("RetestRequested") == 10 + 1 and kinds.count("ResidentsRecalled") == 2
    assert kinds.count("CaseConfirmed") == 1 and kinds.count("LabFileImported") == 1
    imported = next(envelope for envelope in ours if envelope.type.startswith("juwei.testing.LabFileImported"))
    assert imported.data["file"] == body["file"] and imported.data["recorded"] == RESULTS
    for envelope in ours:
        assert not {"result", "phone", "id_number", "identity"} & set(envelope.data)  # results stay in testing
    runtime.database.dispose()
