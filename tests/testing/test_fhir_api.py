"""FHIR R4 search over test results: recorded through the API, read as searchset Bundles, every resource
validated by an independent FHIR library (fhir.resources, R4B models), filters checked both ways, no one's
register id in the answer, every person shown audited, and refused to roles without health data."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from contracts import roles as r
from juwei.callers import Grant
from services.testing.application import antigen as antigen_use_case
from services.testing.application import results as results_use_case
from services.testing.application import samples as samples_use_case
from tests.conftest import both_databases
from tests.testing.compound import Compound
from tests.testing.conftest import PROBLEM, Testing, open_points, receive, small_compound

LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
DETECTED, NOT_DETECTED = "260373001", "260415000"
FIRST_DAY = datetime(2022, 4, 12, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
SECOND_DAY = datetime(2022, 4, 13, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """The service's clock (samples taken, results recorded, self-tests reported) stands at ``moment``."""
    for module in (samples_use_case, results_use_case, antigen_use_case):
        monkeypatch.setattr(module, "now", lambda: moment)


def _record(testing: Testing, monkeypatch: pytest.MonkeyPatch) -> tuple[Compound, list[str], list[str]]:
    """Round r1: a negative pool (T1) and a positive one (T2) on the 12th; on the 13th three of T2 re-tested
    alone (positive, negative, invalid) and one antigen self-test (round a1). Returns the people of both pools
    and the antigen reporter's household members."""
    compound = small_compound(buildings=3, residents=120, bedridden_share=0.0)
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 2)
    testing.ok("POST", "/assignment/proposal")
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"]})
    testing.ok("POST", "/rounds", json={"round": "a1", "kind": "antigen", "starts_at": "2022-04-13T08:00"})
    people = [p for p, (building, _h, _f, _b) in compound.residents.items() if building == "1"][:20]
    volunteer = testing.point_key("p1")
    _at(monkeypatch, FIRST_DAY)
    testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T1", "residents": people[:10]})
    testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T2", "residents": people[10:]})
    testing.ok("POST", "/plates/P1/results", json={"results": [{"tube": "T1", "result": "negative"}]})
    testing.ok("POST", "/tubes/T2/result", json={"result": "positive"})
    _at(monkeypatch, SECOND_DAY)
    for number, (person, result) in enumerate(
        zip(people[10:13], ("positive", "negative", "invalid"), strict=True), start=1
    ):
        testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": f"S{number}", "residents": [person]})
        testing.ok("POST", f"/rounds/r1/residents/{person}/result", json={"result": result})
    household, members = next((h, m) for h, m in compound.households_of("2").items())
    testing.ok(
        "POST",
        f"/rounds/a1/households/{household}/antigen",
        headers=testing.household_key(household),
        data={"resident": members[0], "result": "positive"},
    )
    return compound, people, members


def _bundle(testing: Testing, resource: str, query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = testing.client.get(f"/compounds/c1/fhir/{resource}?{query}", headers=headers or testing.staff)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/fhir+json"
    found = answer.json()
    Bundle.model_validate(found)  # the whole Bundle and each resource in it, by the R4B models
    assert (found["resourceType"], found["type"]) == ("Bundle", "searchset")
    return found


def _resources(bundle: dict[str, Any], mode: str = "match") -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"] if entry["search"]["mode"] == mode]


def _value(observation: dict[str, Any]) -> str | None:
    concept = observation.get("valueCodeableConcept")
    if concept is None:
        return None
    (coding,) = concept["coding"]
    assert coding["system"] == SNOMED
    return coding["code"]


def _loinc(resource: dict[str, Any]) -> str:
    (coding,) = resource["code"]["coding"]
    assert coding["system"] == LOINC
    return coding["code"]


def _problem(testing: Testing, resource: str, query: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    answer = testing.client.get(f"/compounds/c1/fhir/{resource}?{query}", headers=headers or testing.staff)
    assert answer.status_code >= 400, answer.text
    assert answer.headers["content-type"] == PROBLEM, answer.text
    return answer.status_code, answer.json()["code"]


@both_databases
def test_results_come_out_as_valid_fhir_observations_and_reports(
    testing: Testing, monkeypatch: pytest.MonkeyPatch
) -> None:
    compound, _people, _members = _record(testing, monkeypatch)
    found = _bundle(testing, "Observation", "round=r1")
    observations = _resources(found)
    assert found["total"] == len(observations) == 23  # 10 + 10 in the pools, 3 alone
    for each in observations:
        Observation.model_validate(each)
        assert _loinc(each) == "94500-6" and each["subject"]["reference"].startswith("Patient/p")
    by_method: dict[str, list[dict[str, Any]]] = {}
    for each in observations:
        by_method.setdefault(each["method"]["text"].split(" ")[0], []).append(each)
    pooled, alone = by_method["pooled"], by_method["individual"]
    assert (
        sorted((o["status"], _value(o)) for o in pooled)
        == [("final", NOT_DETECTED)] * 10 + [("preliminary", DETECTED)] * 10
    )  # a positive pool is followed by individual re-tests: preliminary for each of its people
    assert sorted((o["status"], _value(o) or "") for o in alone) == [
        ("final", ""),
        ("final", DETECTED),
        ("final", NOT_DETECTED),
    ]
    (invalid,) = [o for o in alone if _value(o) is None]
    assert invalid["dataAbsentReason"]["coding"][0]["code"] == "error"
    # The same person under the same pseudonym in their pool and in their own re-test.
    retested = {o["subject"]["reference"] for o in alone}
    assert retested <= {o["subject"]["reference"] for o in pooled if _value(o) == DETECTED}
    assert len({o["subject"]["reference"] for o in observations}) == 20
    assert {o["effectiveDateTime"][:10] for o in pooled} == {"2022-04-12"}
    assert {o["effectiveDateTime"] for o in alone} == {"2022-04-13T11:00:00+08:00"}

    antigen = _resources(_bundle(testing, "Observation", "round=a1"))
    (self_test,) = antigen
    Observation.model_validate(self_test)
    assert (_loinc(self_test), _value(self_test), self_test["status"]) == ("94558-4", DETECTED, "final")

    reports = _resources(_bundle(testing, "DiagnosticReport", "round=r1"))
    assert len(reports) == 5
    by_tube = {report["identifier"][0]["value"]: report for report in reports}
    assert set(by_tube) == {"T1", "T2", "S1", "S2", "S3"}
    for report in reports:
        DiagnosticReport.model_validate(report)
        assert _loinc(report) == "94500-6"
    assert len(by_tube["T1"]["result"]) == 10 and "subject" not in by_tube["T1"]  # a pool is ten people
    assert by_tube["T1"]["conclusionCode"][0]["coding"][0]["code"] == NOT_DETECTED
    assert by_tube["S1"]["conclusionCode"][0]["coding"][0]["code"] == DETECTED
    assert "conclusionCode" not in by_tube["S3"] and by_tube["S3"]["conclusion"].startswith("invalid")
    assert by_tube["S1"]["subject"]["reference"] in retested
    assert {ref["reference"] for report in reports for ref in report["result"]} == {
        f"Observation/{o['id']}" for o in observations
    }
    with_results = _bundle(testing, "DiagnosticReport", "round=r1&_include=DiagnosticReport:result")
    assert with_results["total"] == 5 and len(_resources(with_results, "include")) == 23

    # Nobody's register id, household, flat or tube-mate list: pseudonyms only.
    text = " ".join(
        str(_bundle(testing, resource, query))
        for resource in ("Observation", "DiagnosticReport")
        for query in ("", "_include=DiagnosticReport:result" if resource == "DiagnosticReport" else "")
    )
    for resident, (_building, household, _floor, _bedridden) in compound.residents.items():
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(resident)}(?![0-9A-Za-z])", text), resident
        assert household not in text
    # Nor anything shaped like a mobile number or an ID-card number (testing holds none: nothing to leak).
    assert not re.search(r"(?<![0-9A-Za-z])(1[3-9][0-9]{9}|[0-9]{17}[0-9Xx])(?![0-9A-Za-z])", text)
    assert set(re.findall(r"urn:juwei:c1:[a-z-]+", text)) == {
        "urn:juwei:c1:round",
        "urn:juwei:c1:tube",
        "urn:juwei:c1:antigen-report",
    }


@both_databases
def test_search_filters_paging_and_bad_input(testing: Testing, monkeypatch: pytest.MonkeyPatch) -> None:
    _record(testing, monkeypatch)
    total = {"": 24, "round=r1": 23, "round=a1": 1}
    for query, expected in total.items():
        assert _bundle(testing, "Observation", query)["total"] == expected
    # date: when the sample was taken (or the self-test done), in the compound's time zone unless an offset.
    dated = {
        "date=2022-04-12": 20,
        "date=2022-04-13": 4,
        "date=2022-04-13&round=r1": 3,
        "date=ge2022-04-13": 4,
        "date=lt2022-04-13": 20,
        "date=ge2022-04-12&date=lt2022-04-13": 20,
        "date=2022-04": 24,
        "date=2022-05": 0,
        "date=ne2022-04-12": 4,
        "date=gt2022-04-12T08:30": 4,
        "date=eq2022-04-12T00:30Z": 20,
        "date=le2022-04-12T00:29Z": 0,
        "_lastUpdated=ge2022-04-13T11:00:00%2B08:00": 4,
    }
    for query, expected in dated.items():
        assert _bundle(testing, "Observation", query)["total"] == expected, query
    assert _bundle(testing, "Observation", "code=http://loinc.org|94558-4")["total"] == 1
    assert _bundle(testing, "Observation", "code=94500-6")["total"] == 23
    assert _bundle(testing, "Observation", "code=94500-6,94558-4")["total"] == 24
    assert _bundle(testing, "DiagnosticReport", "code=94558-4")["total"] == 1
    assert _bundle(testing, "DiagnosticReport", "date=2022-04-13&code=94500-6")["total"] == 3

    alone = _resources(_bundle(testing, "Observation", "date=2022-04-13&code=94500-6"))
    subject = next(o for o in alone if _value(o) == DETECTED)["subject"]["reference"]
    own = _resources(_bundle(testing, "Observation", f"subject={subject}"))
    assert sorted((o["method"]["text"].split(" ")[0], o["status"]) for o in own) == [
        ("individual", "final"),
        ("pooled", "preliminary"),
    ]
    assert _bundle(testing, "Observation", f"patient={subject.removeprefix('Patient/')}&date=2022-04-12")["total"] == 1
    assert _bundle(testing, "Observation", "subject=Patient/p0")["total"] == 0

    # Paging: Bundle.link next until there is none; every match exactly once, oldest result first.
    seen: list[str] = []
    url: str | None = "/compounds/c1/fhir/Observation?round=r1&_count=5"
    pages = 0
    while url is not None:
        page = testing.client.get(url, headers=testing.staff)
        assert page.status_code == 200, page.text
        body = page.json()
        Bundle.model_validate(body)
        assert body["total"] == 23 and len(body["entry"]) <= 5
        seen += [entry["resource"]["id"] for entry in body["entry"]]
        links = {link["relation"]: link["url"] for link in body["link"]}
        url = None
        if "next" in links:
            parts = urlsplit(links["next"])
            url = f"{parts.path}?{parts.query}"
            assert "round=r1" in parts.query and "_count=5" in parts.query
        pages += 1
    assert pages == 5 and len(seen) == len(set(seen)) == 23
    reports: list[str] = []
    url = "/compounds/c1/fhir/DiagnosticReport?_count=2"
    while url is not None:
        body = testing.client.get(url, headers=testing.staff).json()
        reports += [entry["resource"]["id"] for entry in body["entry"]]
        nexts = [link["url"] for link in body["link"] if link["relation"] == "next"]
        url = f"{urlsplit(nexts[0]).path}?{urlsplit(nexts[0]).query}" if nexts else None
    assert len(reports) == len(set(reports)) == 6

    refused = {
        ("Observation", "name=wang"): (422, "search-parameter-unknown"),
        ("Observation", "date:missing=true"): (422, "search-parameter-unknown"),
        ("Observation", "date=2022-13-01"): (422, "date-invalid"),
        ("Observation", "date=yesterday"): (422, "date-invalid"),
        ("Observation", "date=sa2022-04-12"): (422, "date-invalid"),
        ("Observation", "date=2022-04-12T08:00%2B25:00"): (422, "date-invalid"),
        ("Observation", "date=9999-12-31"): (422, "date-invalid"),
        ("Observation", "_count=0"): (422, "count-invalid"),
        ("Observation", "_count=%C2%B2"): (422, "count-invalid"),
        ("Observation", "_count=1001"): (422, "count-invalid"),
        ("Observation", "_count=ten"): (422, "count-invalid"),
        ("Observation", "_count=5&_count=6"): (422, "search-parameter-repeated"),
        ("Observation", "round=r9"): (404, "round-unknown"),
        ("Observation", "round=r%201"): (422, "round-invalid"),
        ("Observation", "code=http://snomed.info/sct|94500-6"): (422, "code-unknown"),
        ("Observation", "code=12345-6"): (422, "code-unknown"),
        ("Observation", "subject=Resident/r1_1"): (422, "subject-invalid"),
        ("Observation", "_cursor=bm90LWEtY3Vyc29y!"): (422, "cursor-invalid"),
        ("Observation", "_format=xml"): (422, "format-unsupported"),
        ("Observation", "_include=DiagnosticReport:result"): (422, "include-unsupported"),
    }
    for (resource, query), expected in refused.items():
        assert _problem(testing, resource, query) == expected, query
    answer = testing.client.get("/compounds/c1/fhir/Observation?date=2022-02-30", headers=testing.staff)
    assert answer.status_code == 422 and answer.json()["parameter"] == "date"
    chinese = testing.client.get(
        "/compounds/c1/fhir/Observation?colour=red", headers={**testing.staff, "Accept-Language": "zh-CN"}
    ).json()
    assert chinese["detail"] == "不支持检索参数 colour" and chinese["code"] == "search-parameter-unknown"


@both_databases
def test_only_health_readers_get_results_and_each_read_is_audited(
    testing: Testing, monkeypatch: pytest.MonkeyPatch
) -> None:
    _compound, people, _members = _record(testing, monkeypatch)
    for role, buildings in (
        (r.INFORMATION_OFFICER, ["1"]),
        (r.LOGISTICS_VOLUNTEER, ["1"]),
        (r.SAMPLING_VOLUNTEER, None),
        (r.SUBDISTRICT_STAFF, None),
        (r.HOUSEHOLD, ["1"]),
    ):
        for resource in ("Observation", "DiagnosticReport"):
            assert _problem(testing, resource, "round=r1", testing.key(role, buildings)) == (403, "forbidden"), role
    assert _problem(testing, "Observation", "", testing.key(r.COMMITTEE_STAFF, compound="c2")) == (403, "forbidden")
    no_health = testing.key(r.EXTERNAL_CONSUMER, compound=None, grant=Grant(frozenset({"juwei.testing.*"})))
    assert _problem(testing, "Observation", "", no_health) == (403, "health-not-granted")
    residents_only = testing.key(
        r.EXTERNAL_CONSUMER, compound=None, grant=Grant(frozenset({"juwei.residents.*"}), health=True)
    )
    assert _problem(testing, "Observation", "", residents_only) == (403, "results-not-granted")
    elsewhere = testing.key(
        r.EXTERNAL_CONSUMER, compound=None, grant=Grant(frozenset({"juwei.testing.*"}), frozenset({"c2"}), True)
    )
    assert _problem(testing, "Observation", "", elsewhere) == (403, "forbidden")
    granted = testing.key(
        r.EXTERNAL_CONSUMER,
        compound=None,
        grant=Grant(frozenset({"juwei.testing.TubeResulted"}), frozenset({"c1"}), health=True),
    )
    before = testing.ok("GET", "/sensitive-reads?kind=health&limit=1000")["reads"]
    assert before == []
    system = _bundle(testing, "Observation", "round=r1&_count=7", granted)
    shown = {o["subject"]["reference"] for o in _resources(system)}
    reads = testing.ok("GET", "/sensitive-reads?kind=health&limit=1000")["reads"]
    assert len(reads) == len(shown) == 7  # one row per person on the page
    assert {read["route"] for read in reads} == {"/compounds/c1/fhir/Observation"}
    assert {read["fields"][0] for read in reads} == {"pcr_result"}
    assert {read["purpose"] for read in reads} == {"FHIR Observation search"}
    assert {read["subject"].split(":")[0] for read in reads} == {"c1"}
    assert {read["subject"].split(":")[1] for read in reads} <= set(people)
    # Who is behind a pseudonym: staff only, asked for, and audited as identity.
    assert _problem(testing, "Observation", "_include=Observation:subject", granted) == (403, "identity-not-granted")
    assert testing.ok("GET", "/sensitive-reads?kind=identity")["reads"] == []
    linked = _bundle(
        testing,
        "Observation",
        "date=2022-04-13&code=94500-6&_include=Observation:subject",
        {**testing.staff, "X-Juwei-Purpose": "transfer list"},
    )
    patients = _resources(linked, "include")
    assert len(patients) == 3
    for each in patients:
        Patient.model_validate(each)
        assert set(each) == {"resourceType", "id", "identifier"}  # no name: testing keeps none
        assert each["identifier"][0]["value"] in people[10:13]
    identity = testing.ok("GET", "/sensitive-reads?kind=identity")["reads"]
    assert sorted(read["subject"] for read in identity) == sorted(f"c1:{p}" for p in people[10:13])
    assert {read["purpose"] for read in identity} == {"transfer list"}
