"""Zone changes as CAP 1.2 alerts: a case from testing on the real Kafka, days passing and an authority decision
over HTTP each become an alert in the compound's Atom feed, valid against the OASIS schema, in Chinese and
English, expiring when the zone rules say, naming no one; who reads them; bad input as problems.

The schema is OASIS's own, vendored byte for byte: ``tests/residents/CAP-v1.2.xsd`` is
http://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2.xsd (Copyright OASIS Open 2010), taken from the copy in
github.com/IBM/cap (resources/CAP-v1.2.xsd, commit c78ccac7, "adds http://docs.oasis-open.org/…/CAP-v1.2.xsd").
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from contracts import roles as r
from contracts.testing import CaseConfirmed
from juwei.auth import issue_key
from juwei.callers import Grant, Holder
from juwei.consumer import dead_letter_topic
from juwei.events import Envelope, new_event_id, utcnow
from juwei.service import Runtime, create_app
from services.residents import handlers
from services.residents.domain.alerts import Sender, ZoneAlert, wording
from tests.conftest import both_databases
from tests.kernel.harness import start_at_the_end, wait_for
from tests.residents.conftest import TODAY, make_residents
from tests.residents.seed import register_buildings

XSD = Path(__file__).with_name("CAP-v1.2.xsd")
XSD_SHA256 = "b7798ef25868b068c97b268bda02d067c7d4ba9373adc5638bf37105804ee723"
CAP = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM = "http://www.w3.org/2005/Atom"
NS = {"cap": CAP, "atom": ATOM}
PROBLEM = "application/problem+json"
NAME, PHONE = "王建国", "13800138000"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    assert hashlib.sha256(XSD.read_bytes()).hexdigest() == XSD_SHA256  # OASIS's file, unchanged
    return xmlschema.XMLSchema(XSD)


def _key(runtime: Runtime, role: str, compound: str | None, grant: Grant | None = None) -> dict[str, str]:
    with runtime.database.unit_of_work() as session:
        issued = issue_key(session, role, compound, None, holder=Holder("system", f"test {role}"), grant=grant)
    return {"X-API-Key": issued.key}


def _case(compound: str, building: str, on: date) -> Envelope:
    event = CaseConfirmed(
        case=f"case-{new_event_id()[:8]}",
        resident=f"{compound}:r1",
        household=f"{compound}:h1",
        building=f"{compound}:{building}",
        confirmed_on=on,
    )
    return Envelope(
        id=new_event_id(),
        source="/juwei/testing",
        type=event.type_name(),
        subject=f"case-{event.case}",
        time=utcnow(),
        data=event.model_dump(mode="json"),
        compound=compound,
        streamversion=1,
        building=event.building,
    )


def _feed(client: TestClient, compound: str, headers: dict[str, str], query: str = "") -> tuple[bytes, list]:
    answer = client.get(f"/compounds/{compound}/cap{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = ET.fromstring(answer.content)
    assert feed.tag == f"{{{ATOM}}}feed"
    return answer.content, feed.findall("atom:entry", NS)


def _alert_of(entry: ET.Element) -> ET.Element:
    content = entry.find("atom:content", NS)
    assert content is not None and content.get("type") == "application/cap+xml"
    (alert,) = list(content)
    return alert


def _text(alert: ET.Element, path: str) -> str | None:
    found = alert.find(path, NS)
    return None if found is None else found.text


def _infos(alert: ET.Element) -> dict[str, ET.Element]:
    return {info.findtext("cap:language", namespaces=NS): info for info in alert.findall("cap:info", NS)}


def _area(alert: ET.Element) -> dict[str | None, str | None]:
    return {language: info.findtext("cap:area/cap:areaDesc", namespaces=NS) for language, info in _infos(alert).items()}


def _check(alert: ET.Element, schema: xmlschema.XMLSchema, *, zone: str, msg_type: str, expires: str | None) -> None:
    schema.validate(alert)  # raises with the reason when the alert is not CAP 1.2
    assert (_text(alert, "cap:status"), _text(alert, "cap:msgType"), _text(alert, "cap:scope")) == (
        "Actual",
        msg_type,
        "Public",
    )
    infos = _infos(alert)
    assert list(infos) == ["zh-CN", "en"]
    for info in infos.values():
        assert info.findtext("cap:category", namespaces=NS) == "Health"
        assert info.findtext("cap:eventCode/cap:value", namespaces=NS) == zone
        assert info.findtext("cap:expires", namespaces=NS) == expires
        for part in ("event", "headline", "description", "instruction", "senderName"):
            assert info.findtext(f"cap:{part}", namespaces=NS), part
    assert {"sealed": "封控区", "controlled": "管控区", "precaution": "防范区"}[zone] in infos["zh-CN"].findtext(
        "cap:headline", namespaces=NS
    )
    assert f"{zone} zone" in infos["en"].findtext("cap:headline", namespaces=NS)


def _reference(alert: ET.Element) -> str:
    return ",".join((_text(alert, "cap:sender"), _text(alert, "cap:identifier"), _text(alert, "cap:sent")))


def _scope(alert: ET.Element) -> str | None:
    """The building an alert is about (its geocode), or None for the compound's own zone."""
    for geocode in alert.findall("cap:info[1]/cap:area/cap:geocode", NS):
        if geocode.findtext("cap:valueName", namespaces=NS) == "juwei:building":
            return geocode.findtext("cap:value", namespaces=NS)
    return None


@both_databases
def test_zone_changes_become_cap_alerts_in_the_feed_valid_in_both_languages_naming_no_one(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str, schema: xmlschema.XMLSchema
) -> None:
    compound = f"k{suffix}"
    if broker is not None:
        broker.create_topics(["juwei.testing", "juwei.residents", dead_letter_topic("juwei.testing")])
    url = new_database("residents")
    runtime = make_residents(url, tmp_path, kafka=kafka)
    register_buildings(runtime, compound, 3)
    operator = _key(runtime, r.DISTRICT_OPERATOR, None)
    household = _key(runtime, r.HOUSEHOLD, compound)
    with TestClient(create_app(runtime, background=False)) as client:
        # Someone with a name and a phone lives in building 2: none of it may reach an alert.
        made = client.post(
            f"/compounds/{compound}/households",
            json={"household": "h1", "building": "2", "floor": 15, "room": 2},
            headers=operator,
        )
        assert made.status_code == 201, made.text
        person = {"resident": "r1", "name": NAME, "phone": PHONE, "birth_year": 1950}
        made = client.post(f"/compounds/{compound}/households/h1/residents", json=person, headers=operator)
        assert made.status_code == 201, made.text
        assert _feed(client, compound, household)[1] == []  # no zone has changed yet

        # A case confirmed by testing reaches residents on Kafka and seals building 2 (and the compound).
        consumer = runtime.make_consumer()
        consumer.group = f"residents-cap-{suffix}"
        consumer.consumer_overrides = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
        # Only this case: thousands of earlier tests' events on the shared topic outlast the wait on a loaded CI.
        start_at_the_end(kafka, consumer.group, *consumer.topics)
        producer = KafkaProducer(bootstrap_servers=kafka)
        key, value, headers = _case(compound, "2", TODAY).to_kafka()
        producer.send("juwei.testing", key=key, value=value, headers=headers)
        producer.flush()
        producer.close()
        try:
            wait_for(
                lambda: (consumer.poll_once(300), len(_feed(client, compound, household)[1]))[1] == 2,
                what="the alerts of the sealed building and compound",
            )
        finally:
            consumer.close()
        _, entries = _feed(client, compound, household)
        sealed = {_scope(_alert_of(e)): _alert_of(e) for e in entries}
        assert set(sealed) == {"2", None}
        for alert in sealed.values():  # 7 days after the case on 10 April, at midnight in Shanghai
            _check(alert, schema, zone="sealed", msg_type="Alert", expires="2022-04-17T00:00:00+08:00")
            assert alert.find("cap:references", NS) is None
            assert _text(alert, "cap:sender") == f"juwei:residents:{compound}"
        building = sealed["2"]
        assert _area(building) == {"zh-CN": f"{compound} 小区 2号楼", "en": f"Building 2, compound {compound}"}
        assert _area(sealed[None]) == {
            "zh-CN": f"{compound} 小区（全部楼栋）",
            "en": f"Compound {compound} (all buildings)",
        }
        info = _infos(building)["zh-CN"]
        assert (info.findtext("cap:urgency", namespaces=NS), info.findtext("cap:severity", namespaces=NS)) == (
            "Immediate",
            "Severe",
        )
        assert "2022-04-17 转为管控区" in info.findtext("cap:description", namespaces=NS)

        # One alert on its own: the same alert, read twice alike, as application/cap+xml.
        identifier = _text(building, "cap:identifier")
        alone = client.get(f"/compounds/{compound}/cap/{identifier}.xml", headers=household)
        assert alone.status_code == 200, alone.text
        assert alone.headers["content-type"] == "application/cap+xml; charset=utf-8"
        assert alone.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<alert xmlns=\"" + CAP.encode())
        schema.validate(alone.text)
        assert ET.tostring(ET.fromstring(alone.content)) == ET.tostring(building)
        assert client.get(f"/compounds/{compound}/cap/{identifier}.xml", headers=household).content == alone.content
        only = _feed(client, compound, household, "?building=2")[1]
        assert [_text(_alert_of(e), "cap:identifier") for e in only] == [identifier]
    runtime.database.dispose()

    # Seven days without a case: the next change is an Update that supersedes the sealed alert.
    later = make_residents(url, tmp_path, today=TODAY + timedelta(days=7))
    handlers.let_the_days_count(later)
    household = _key(later, r.HOUSEHOLD, compound)
    with TestClient(create_app(later, background=False)) as client:
        _, entries = _feed(client, compound, household)
        assert len(entries) == 4
        newest = {_scope(_alert_of(e)): _alert_of(e) for e in entries[:2]}
        assert set(newest) == {"2", None}
        controlled = newest["2"]
        _check(controlled, schema, zone="controlled", msg_type="Update", expires="2022-04-24T00:00:00+08:00")
        assert _text(controlled, "cap:references") == _reference(building)
        assert _text(newest[None], "cap:references") == _reference(sealed[None])
        assert "连续 7 天无新增确诊病例" in _infos(controlled)["zh-CN"].findtext("cap:description", namespaces=NS)

        # The authorities re-seal building 2 over HTTP, with a reason that names someone: it stays out.
        staff = _key(later, r.COMMITTEE_STAFF, compound)
        decided = client.post(
            f"/compounds/{compound}/zones/decisions",
            json={"building": "2", "zone": "sealed", "reason": f"{NAME} 1502 密接"},
            headers=staff,
        )
        assert decided.status_code == 201, decided.text
        text, entries = _feed(client, compound, household)
        decision = _alert_of(entries[0]) if _scope(_alert_of(entries[0])) == "2" else _alert_of(entries[1])
        _check(decision, schema, zone="sealed", msg_type="Update", expires=None)  # holds until the next case
        assert _text(decision, "cap:references") == _reference(controlled)
        assert "by decision of the authorities" in _infos(decision)["en"].findtext("cap:description", namespaces=NS)
        for entry in entries:
            schema.validate(_alert_of(entry))
        everything = text.decode() + "".join(
            client.get(f"/compounds/{compound}/cap/{_text(_alert_of(e), 'cap:identifier')}.xml", headers=household).text
            for e in entries
        )
        for secret in (NAME, PHONE, "1502", f"{compound}:r1", f"{compound}:h1", ">r1<", ">h1<"):
            assert secret not in everything, secret

        # A replay rebuilds the same alerts: same identifiers, same times, same references.
        later.projector.rebuild(["zone_alerts"])
        assert _feed(client, compound, household)[0] == text
    later.database.dispose()


@both_databases
def test_who_reads_the_alerts_and_bad_input_answers_problems(new_database, tmp_path: Path) -> None:
    runtime = make_residents(new_database("residents"), tmp_path)
    register_buildings(runtime, "c1", 2)
    register_buildings(runtime, "c2", 1)
    with runtime.database.unit_of_work() as session:
        handlers.record_case(runtime, session, "c1", "c1:1", TODAY)
        handlers.record_case(runtime, session, "c2", "c2:1", TODAY)
    zones = "juwei.residents.ZoneStatusChanged"
    with TestClient(create_app(runtime, background=False)) as client:
        # Every key of the compound reads its alerts (public, like the board); another compound's key does not.
        for role in (r.HOUSEHOLD, r.LOGISTICS_VOLUNTEER, r.SAMPLING_VOLUNTEER, r.SUBDISTRICT_STAFF, r.COMMITTEE_STAFF):
            assert len(_feed(client, "c1", _key(runtime, role, "c1"))[1]) == 2, role
        other = client.get("/compounds/c1/cap", headers=_key(runtime, r.HOUSEHOLD, "c2"))
        assert (other.status_code, other.headers["content-type"]) == (403, PROBLEM)
        assert client.get("/compounds/c1/cap").status_code == 401
        # Another system: by its grant's event types and compounds.
        granted = _key(runtime, r.EXTERNAL_CONSUMER, None, Grant(frozenset({zones}), frozenset({"c1"})))
        assert len(_feed(client, "c1", granted)[1]) == 2
        assert client.get("/compounds/c2/cap", headers=granted).status_code == 403
        whole_service = _key(runtime, r.EXTERNAL_CONSUMER, None, Grant(frozenset({"juwei.residents.*"})))
        assert len(_feed(client, "c2", whole_service)[1]) == 2
        testing_only = _key(runtime, r.EXTERNAL_CONSUMER, None, Grant(frozenset({"juwei.testing.CaseConfirmed"})))
        refused = client.get("/compounds/c1/cap", headers=testing_only)
        assert (refused.status_code, refused.headers["content-type"]) == (403, PROBLEM)
        assert refused.json()["code"] == "grant-type"

        staff = _key(runtime, r.COMMITTEE_STAFF, "c1")
        unknown = client.get("/compounds/c1/cap?building=9", headers=staff)
        assert (unknown.status_code, unknown.headers["content-type"]) == (404, PROBLEM)
        assert (unknown.json()["code"], unknown.json()["building"]) == ("building-unknown", "9")
        for bad in ("?building=../1", "?building=", "?limit=0", "?limit=1001"):
            answer = client.get(f"/compounds/c1/cap{bad}", headers=staff)
            assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), bad
        for malformed in ("nope", "zone-123", f"zone-{uuid.uuid4().hex}", f"Zone-{uuid.uuid4()}"):
            answer = client.get(f"/compounds/c1/cap/{malformed}.xml", headers=staff)
            assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), malformed
        missing = client.get(f"/compounds/c1/cap/zone-{uuid.uuid4()}.xml", headers=staff)
        assert (missing.status_code, missing.json()["code"]) == (404, "alert-unknown")
        # An alert of c2 is not found under c1, even by a key that may read both.
        (c2_entry, _) = _feed(client, "c2", whole_service)[1]
        theirs = _text(_alert_of(c2_entry), "cap:identifier")
        assert client.get(f"/compounds/c2/cap/{theirs}.xml", headers=whole_service).status_code == 200
        elsewhere = client.get(f"/compounds/c1/cap/{theirs}.xml", headers=whole_service)
        assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "alert-unknown")
        assert client.get("/compounds/c1/cap/zone-x", headers=staff).status_code == 404  # no .xml: no such route
    runtime.database.dispose()


def _alert(**changes: object) -> ZoneAlert:
    facts: dict = dict(
        identifier=f"zone-{uuid.uuid4()}",
        compound="c1",
        building="12",
        building_number="12",
        sent=datetime(2022, 4, 10, 2, 30, tzinfo=UTC),
        zone="sealed",
        previous="precaution",
        last_case_on=date(2022, 4, 10),
        days_since_last_case=0,
        next_zone="controlled",
        next_change_on=date(2022, 4, 17),
        decided_by_authority=False,
        supersedes=None,
    )
    facts.update(changes)
    return ZoneAlert(**facts)


def test_the_wording_and_grading_of_each_zone() -> None:
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    sealed = _alert()
    assert sealed.expires(shanghai) == datetime(2022, 4, 17, tzinfo=shanghai)
    assert (sealed.msg_type, sealed.grading().urgency, sealed.grading().severity) == ("Alert", "Immediate", "Severe")
    zh, en = wording(sealed, "zh-CN"), wording(sealed, "en")
    assert zh.headline == "c1 小区 12号楼为封控区" and en.headline == "Building 12, compound c1: sealed zone"
    assert "足不出户" in zh.instruction and "stay at home" in en.instruction
    controlled = _alert(zone="controlled", previous="sealed", days_since_last_case=7, next_zone="precaution",
                        next_change_on=date(2022, 4, 24), supersedes=("zone-x", sealed.sent))  # fmt: skip
    assert controlled.msg_type == "Update" and controlled.grading().severity == "Moderate"
    assert "连续 7 天无新增确诊病例" in wording(controlled, "zh-CN").description
    assert "becomes a precaution zone on 2022-04-24" in wording(controlled, "en").description
    free = _alert(zone="precaution", previous="controlled", days_since_last_case=14, next_zone=None,
                  next_change_on=None, building=None, building_number=None)  # fmt: skip
    assert free.expires(shanghai) is None and free.grading().urgency == "Future"
    assert wording(free, "en").area == "Compound c1 (all buildings)"
    decided = _alert(decided_by_authority=True)
    assert decided.expires(shanghai) is None
    assert "根据上级部门决定" in wording(decided, "zh-CN").description
    never = _alert(zone="precaution", last_case_on=None, days_since_last_case=None, next_zone=None,
                   next_change_on=None, building_number="A3")  # fmt: skip
    assert wording(never, "zh-CN").description.startswith("c1 小区 A3号楼未发现确诊病例")
    assert wording(never, "en").description.startswith("No case has been confirmed in building A3, compound c1")


def test_a_sender_cap_forbids_stops_the_start() -> None:
    assert Sender.check("jiedao.example.gov.cn/{compound}") == "jiedao.example.gov.cn/{compound}"
    for bad in ("", "a b", "x,y", "a<b", "a&b", "{compound} office"):
        with pytest.raises(ValueError):
            Sender.check(bad)
