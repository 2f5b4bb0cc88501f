"""FHIR search over a compound's PCR and antigen results: who may read them, the pseudonyms people go by,
the page, and the audit of every person whose result (or register id) it shows."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import select

from contracts import roles as r
from contracts.ids import global_id, local_id
from juwei.aggregate import NotFound, NotPermitted
from juwei.audit import Reading, SensitiveRead, record_reads
from juwei.callers import Caller
from juwei.events import utcnow
from juwei.service import Runtime
from juwei.session import Session
from services.testing.application.clock import Clock
from services.testing.domain import fhir
from services.testing.views import antigen, rounds, samples, tubes, utc

# The event types whose results a FHIR read shows: an external system's grant must name one of them.
RESULT_TYPES = ("juwei.testing.TubeResulted", "juwei.testing.IndividualResultRecorded", "juwei.testing.AntigenReported")


def check_reader(caller: Caller, search: fhir.Search) -> None:
    """Results are health data: staff, or another system granted health data and testing's results. The
    register id behind a pseudonym (``_include`` of the subject) is for staff only, who read the register."""
    if caller.role == r.EXTERNAL_CONSUMER:
        grant = caller.grant
        if grant is None or not grant.health:
            raise NotPermitted(
                "test results are health data: this key's grant does not include health data (--grant-health)",
                code="health-not-granted",
            )
        if not any(grant.names_type(name) for name in RESULT_TYPES):
            raise NotPermitted(
                "this key's grant names none of testing's results (juwei.testing.* or the result event types)",
                code="results-not-granted",
            )
        if "subject" in search.include:
            raise NotPermitted(
                "who is behind a pseudonym is not for another system: _include of the subject is staff only",
                code="identity-not-granted",
            )


class Pseudonyms:
    """Opaque, stable ids drawn from the district-wide ids under the service's health key (keyed BLAKE2b, a
    MAC): a reader cannot turn one back into a flat (a resident's register id often names one), nor guess one
    from a register id. Each is drawn once per read (a person is in a pool and in a re-test)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.drawn: dict[tuple[str, ...], str] = {}

    @classmethod
    def of(cls, runtime: Runtime) -> Pseudonyms:
        health_key = runtime.definition.health_key
        assert health_key is not None  # testing is always given the shared health key
        return cls(hashlib.sha256(b"juwei fhir pseudonyms|" + health_key(runtime.settings).encode()).digest())

    def __call__(self, purpose: str, *parts: str) -> str:
        asked = (purpose, *parts)
        found = self.drawn.get(asked)
        if found is None:
            text = "|".join(asked).encode()
            found = self.drawn[asked] = hashlib.blake2b(text, key=self.key, digest_size=16).hexdigest()
        return found


@dataclass(frozen=True)
class Person:
    resident: str  # district-wide
    building: str


def _findings(
    session: Session, compound: str, round_id: str | None, draw: Pseudonyms
) -> list[tuple[fhir.Finding, Person]]:
    pcr = (
        select(
            samples.c.tube,
            samples.c.resident,
            samples.c.building,
            samples.c["round"],
            samples.c.collected_at,
            tubes.c.samples,
            tubes.c.result,
            tubes.c.resulted_at,
        )
        .join(tubes, tubes.c.tube == samples.c.tube)
        .where(tubes.c.compound == compound, tubes.c.result.is_not(None))
    )
    self_tests = select(antigen).where(antigen.c.compound == compound)
    if round_id is not None:
        pcr = pcr.where(tubes.c["round"] == round_id)
        self_tests = self_tests.where(antigen.c["round"] == round_id)
    found: list[tuple[fhir.Finding, Person]] = []
    for row in session.execute(pcr):
        patient = "p" + draw("patient", row.resident)
        finding = fhir.Finding(
            kind="pcr",
            report="tube-" + draw("tube", row.tube),
            report_label=local_id(row.tube),
            patient=patient,
            observation="pcr-" + draw("observation", row.tube, row.resident),
            round=local_id(row.round),
            result=row.result,
            collected_at=utc(row.collected_at),
            resulted_at=utc(row.resulted_at),
            pool=row.samples,
        )
        found.append((finding, Person(row.resident, row.building)))
    for row in session.execute(self_tests):
        patient = "p" + draw("patient", row.resident)
        report = "ag-" + draw("antigen report", row.round, row.resident)
        finding = fhir.Finding(
            kind="antigen",
            report=report,
            report_label=report,
            patient=patient,
            observation="ag-" + draw("antigen", row.round, row.resident),
            round=local_id(row.round),
            result=row.result,
            collected_at=utc(row.reported_at),
            resulted_at=utc(row.reported_at),
        )
        found.append((finding, Person(row.resident, row.building)))
    return found


def read(
    runtime: Runtime,
    caller: Caller,
    compound: str,
    resource: str,
    pairs: list[tuple[str, str]],
    base: str,
    self_url: str,
    next_url: Callable[[str], str],
    reading: Reading,
) -> dict[str, Any]:
    """One page of a FHIR search (``pairs``: the query string), as a searchset Bundle, audited."""
    clock = Clock.of(runtime)
    search = fhir.search(resource, pairs, clock.zone)
    check_reader(caller, search)
    draw = Pseudonyms.of(runtime)
    with runtime.database.unit_of_work() as session:  # the audit rows go with the read, or neither
        round_id = None
        if search.round is not None:
            round_id = global_id(compound, search.round)
            known = session.execute(
                select(rounds.c["round"]).where(rounds.c["round"] == round_id, rounds.c.compound == compound)
            ).scalar()
            if known is None:
                raise NotFound(
                    f"round {search.round} is not a round of compound {compound}",
                    code="round-unknown",
                    round=search.round,
                )
        findings = _findings(session, compound, round_id, draw)
        people = {finding.observation: person for finding, person in findings}
        matched, every_key = _page(resource, search, [finding for finding, _person in findings])
        shown: list[fhir.Finding] = [finding for group in matched for finding in group]
        resources, included = _present(resource, search, matched, compound, clock)
        page_end = matched[-1] if matched else None
        more = page_end is not None and _key(resource, page_end) != every_key[-1]
        if "subject" in search.include:
            patients = {finding.patient: people[finding.observation] for finding in shown}
            included += [
                fhir.patient(pseudonym, compound, local_id(person.resident)) for pseudonym, person in patients.items()
            ]
            _audit(
                session,
                reading,
                caller,
                compound,
                ((person, ("register_id",), "identity") for person in patients.values()),
            )
        _audit(
            session,
            reading,
            caller,
            compound,
            ((people[finding.observation], (f"{finding.kind}_result",), "health") for finding in shown),
        )
    return fhir.bundle(
        resources,
        included,
        len(every_key),
        self_url,
        next_url(fhir.cursor_of(_key(resource, page_end))) if more and page_end is not None else None,
        base,
        clock.shown(utcnow()) or "",
    )


def _key(resource: str, group: list[fhir.Finding]) -> tuple[int, str]:
    if resource == "Observation":
        return group[0].sort_key
    return (fhir.microseconds(max(finding.resulted_at for finding in group)), group[0].report)


def _page(
    resource: str, search: fhir.Search, findings: list[fhir.Finding]
) -> tuple[list[list[fhir.Finding]], list[tuple[int, str]]]:
    """The page's matches (an observation, or a report with all its observations) and every match's key."""
    if resource == "Observation":
        groups = [[finding] for finding in findings if search.admits(finding)]
    else:  # a report matches when one of its observations does, and shows all of them
        reports: dict[str, list[fhir.Finding]] = {}
        for finding in findings:
            reports.setdefault(finding.report, []).append(finding)
        groups = [group for group in reports.values() if any(search.admits(finding) for finding in group)]
    keyed = sorted(((_key(resource, group), group) for group in groups), key=itemgetter(0))  # keys are unique
    keys = [key for key, _group in keyed]
    start = bisect_right(keys, search.after) if search.after is not None else 0
    return [group for _key_of, group in keyed[start : start + search.count]], keys


def _present(
    resource: str, search: fhir.Search, matched: list[list[fhir.Finding]], compound: str, clock: Clock
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if resource == "Observation":
        return [fhir.observation(group[0], compound, clock.shown) for group in matched], []
    reports = [fhir.diagnostic_report(group, compound, clock.shown) for group in matched]
    included = []
    if "result" in search.include:
        included = [fhir.observation(finding, compound, clock.shown) for group in matched for finding in group]
    return reports, included


def _audit(
    session: Session,
    reading: Reading,
    caller: Caller,
    compound: str,
    shown: Iterable[tuple[Person, tuple[str, ...], str]],
) -> None:
    """One row per person and kind of data shown on the page."""
    fields: dict[tuple[str, str], tuple[Person, set[str]]] = {}
    for person, names, kind in shown:
        fields.setdefault((person.resident, kind), (person, set()))[1].update(names)
    record_reads(
        session,
        reading,
        caller,
        compound,
        [
            SensitiveRead(person.resident, kind, tuple(sorted(names)), person.building)
            for (_resident, kind), (person, names) in fields.items()
        ],
    )
