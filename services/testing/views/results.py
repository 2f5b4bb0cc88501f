"""Samples, tubes and their results, antigen self-reports, and each resident's status in a round; kept
set-based, a run of events at a time (a round of 5,000 results is one rebuild chunk).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    select,
    update,
)

from contracts import testing as ev
from juwei.events import Envelope, parse_time
from juwei.projection import Projection, write_many
from juwei.session import Session
from services.testing.domain import status_after
from services.testing.views.schema import antigen, bulk_upsert, own_event, round_residents, samples, tubes, utc


class Results(Projection):
    """Samples, tubes, antigen self-reports and each resident's status in each round."""

    name = "results"
    tables = (samples, round_residents, tubes, antigen)
    reads = (ev.SampleCollected, ev.TubeResulted, ev.IndividualResultRecorded, ev.AntigenReported)

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """Set-based: what the run needs is read once, statuses, tubes and counts change in memory, written once.

        The rows equal those of applying the events one by one (each sample an INSERT, each status read and
        upserted, each tube's samples counted): the tests rebuild full rounds both ways and compare. It reads
        the payloads as they were appended (``EventRegistry.trusted``: own events, validated when appended).
        """
        classes = ev.registry.classes
        run_events: list[tuple[str, str, dict[str, Any]]] = []
        for envelope in envelopes:
            type_name, data = ev.registry.trusted(envelope.type, own_event(envelope))
            run_events.append((envelope.compound, classes[type_name].__name__, data))
        run = _ResultsRun(session, run_events)
        for compound, kind, data in run_events:
            if kind == "SampleCollected":
                run.sampled(compound, data)
            elif kind == "TubeResulted":
                at = parse_time(data["resulted_at"])
                run.tube_result(data["tube"], data["result"], at)
                for resident, household, building in run.tube_samples.get(data["tube"], ()):
                    run.status(compound, data["round"], resident, household, building, kind, data["result"], at)
            elif kind == "IndividualResultRecorded":
                at = parse_time(data["resulted_at"])
                run.tube_result(data["tube"], data["result"], at)
                run.status(
                    compound,
                    data["round"],
                    data["resident"],
                    data["household"],
                    data["building"],
                    kind,
                    data["result"],
                    at,
                )
            elif kind == "AntigenReported":
                at = parse_time(data["reported_at"])
                run.antigen[(data["round"], data["resident"])] = {
                    "round": data["round"],
                    "resident": data["resident"],
                    "compound": compound,
                    "household": data["household"],
                    "building": data["building"],
                    "result": data["result"],
                    "photo": data["photo"],
                    "reported_at": utc(at),
                }
                run.status(
                    compound,
                    data["round"],
                    data["resident"],
                    data["household"],
                    data["building"],
                    kind,
                    data["result"],
                    at,
                )
        run.write()


_IN_CHUNK = 500  # ids per IN (…): well under SQLite's bound-parameter limit
_INSERT_SAMPLES = samples.insert()
_TUBE_RESULT = (
    update(tubes)
    .where(tubes.c.tube == bindparam("b_tube"))
    .values(result=bindparam("b_result"), resulted_at=bindparam("b_resulted_at"))
)
_SAMPLES_OF_TUBES = select(samples.c.tube, samples.c.resident, samples.c.household, samples.c.building).where(
    samples.c.tube.in_(bindparam("tubes", expanding=True))
)
_COUNTS_OF_TUBES = (
    select(samples.c.tube, func.count())
    .where(samples.c.tube.in_(bindparam("tubes", expanding=True)))
    .group_by(samples.c.tube)
)
_STATUSES = select(round_residents.c.resident, round_residents.c.status).where(
    round_residents.c["round"] == bindparam("round"),
    round_residents.c.resident.in_(bindparam("people", expanding=True)),
)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


class _ResultsRun:
    """One run of result events: the rows they touch, read before and written after."""

    def __init__(self, session: Session, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        """``events``: (compound, event class name, payload) of the run, in order."""
        self.session = session
        self.samples: list[dict[str, Any]] = []
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}
        self.tubes: dict[str, dict[str, Any]] = {}  # tubes sampled in the run: whole rows
        self.results: dict[str, dict[str, Any]] = {}  # tubes sampled before the run: only the result changes
        self.antigen: dict[tuple[str, str], dict[str, Any]] = {}
        sampled = list(dict.fromkeys(data["tube"] for _c, kind, data in events if kind == "SampleCollected"))
        resulted = list(dict.fromkeys(data["tube"] for _c, kind, data in events if kind == "TubeResulted"))
        people: dict[str, set[str]] = {}
        for _compound, kind, data in events:
            concerned = data["residents"] if kind == "TubeResulted" else (data["resident"],)
            people.setdefault(data["round"], set()).update(concerned)
        # Read before anything of the run is written: what follows is kept in memory on top of it.
        self.counts: dict[str, int] = {}
        for chunk in _chunks(sampled):
            for tube, count in session.execute(_COUNTS_OF_TUBES, {"tubes": chunk}):
                self.counts[tube] = int(count)
        self.tube_samples: dict[str, list[tuple[str, str, str]]] = {}
        for chunk in _chunks(resulted):
            for tube, resident, household, building in session.execute(_SAMPLES_OF_TUBES, {"tubes": chunk}):
                self.tube_samples.setdefault(tube, []).append((resident, household, building))
        self.current: dict[tuple[str, str], str] = {}
        for round_id, residents_of_round in people.items():
            for chunk in _chunks(sorted(residents_of_round)):
                for resident, status in session.execute(_STATUSES, {"round": round_id, "people": chunk}):
                    self.current[(round_id, resident)] = status

    def sampled(self, compound: str, data: dict[str, Any]) -> None:
        tube, resident, household, building = data["tube"], data["resident"], data["household"], data["building"]
        at = parse_time(data["collected_at"])
        self.samples.append(
            {
                "round": data["round"],
                "resident": resident,
                "attempt": data["attempt"],
                "compound": compound,
                "tube": tube,
                "kind": data["kind"],
                "point": data["point"],
                "household": household,
                "building": building,
                "door_to_door": data["door_to_door"],
                "collected_at": utc(at),
            }
        )
        self.tube_samples.setdefault(tube, []).append((resident, household, building))
        self.status(compound, data["round"], resident, household, building, "SampleCollected", None, at)
        self.counts[tube] = self.counts.get(tube, 0) + 1
        self.results.pop(tube, None)  # the tube's upsert clears the result anyway
        self.tubes[tube] = {
            "tube": tube,
            "compound": compound,
            "round": data["round"],
            "kind": data["kind"],
            "point": data["point"],
            "samples": self.counts[tube],
            "result": None,
            "resulted_at": None,
        }

    def tube_result(self, tube: str, result: str, at: datetime) -> None:
        row = self.tubes.get(tube)
        if row is not None:
            row.update(result=result, resulted_at=utc(at))
        else:
            self.results[tube] = {"b_tube": tube, "b_result": result, "b_resulted_at": utc(at)}

    def status(
        self,
        compound: str,
        round: str,
        resident: str,
        household: str,
        building: str,
        kind: str,
        result: str | None,
        at: datetime,
    ) -> None:
        key = (round, resident)
        status = status_after(self.current.get(key), kind, result)
        self.current[key] = status  # type: ignore[assignment]
        self.statuses[key] = {
            "round": round,
            "resident": resident,
            "compound": compound,
            "household": household,
            "building": building,
            "status": status,
            "updated_at": utc(at),
        }

    def write(self) -> None:
        if self.samples:
            write_many(self.session, _INSERT_SAMPLES, self.samples)
        bulk_upsert(self.session, round_residents, ("round", "resident"), list(self.statuses.values()))
        bulk_upsert(self.session, tubes, ("tube",), list(self.tubes.values()))
        if self.results:
            write_many(self.session, _TUBE_RESULT, list(self.results.values()))
        bulk_upsert(self.session, antigen, ("round", "resident"), list(self.antigen.values()))
