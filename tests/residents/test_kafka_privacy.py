"""What the residents service puts on the real Kafka carries ids, never a name, phone or ID number."""

from __future__ import annotations

from pathlib import Path

from contracts.ids import global_id
from juwei.consumer import dead_letter_topic
from juwei.events import Envelope
from juwei.repository import Repository
from juwei.vault import SEALED_KEY_HEADER, KeyCourier, _decrypt
from services.residents.domain import Household, Needs
from tests.kernel.harness import published, relay_everything
from tests.residents.conftest import TODAY, make_residents
from tests.residents.seed import register_buildings

PEOPLE = [
    ("r1", "王秀英", "13912345678", "310101195003071234"),
    ("r2", "李建国", "13800001111", "31010119880512432X"),
    ("r3", "Zhang Wei", "15000002222", "110105201801010011"),
]


def test_no_identity_reaches_kafka(new_database, tmp_path: Path, kafka: str, broker, suffix: str) -> None:
    compound = f"p{suffix}"
    if broker is not None:
        broker.create_topics(["juwei.residents", dead_letter_topic("juwei.residents")])
    runtime = make_residents(new_database("residents"), tmp_path, kafka=kafka)
    register_buildings(runtime, compound, 1)
    building = global_id(compound, "1")
    households = Repository(runtime.store, Household)
    with runtime.database.unit_of_work() as session:
        home = households.load(session, global_id(compound, "h1"))
        home.register(building, 3, 2, floors=18, rooms_per_floor=4)
        for local, name, phone, id_number in PEOPLE:
            resident = global_id(compound, local)
            token = runtime.vault.seal(session, resident, {"name": name, "phone": phone, "id_number": id_number})
            home.add_resident(resident, 1950, Needs(regular_medication=True), today=TODAY, identity=token)
        home.choose_representative(global_id(compound, "r1"))
        households.save(session, home, compound=compound)
    records = published(kafka, "juwei.residents", lambda: relay_everything(runtime), compound)
    assert len(records) == 1 + 1 + len(PEOPLE) + 1  # building, household, residents, representative
    for record in records:
        text = record.value.decode() + "".join(value.decode() for _, value in record.headers)
        for _, name, phone, id_number in PEOPLE:
            assert name not in text and phone not in text and id_number not in text
            assert phone[-4:] + id_number[-4:] not in text
        envelope = Envelope.from_kafka(record.value, record.headers)
        assert "identity" not in envelope.data  # not even the sealed token leaves the service
        assert not {"name", "phone", "id_number"} & set(envelope.data)
    registered = [r for r in records if dict(r.headers)["ce_type"] == b"juwei.residents.ResidentRegistered.v2"]
    envelopes = [Envelope.from_kafka(r.value, r.headers) for r in registered]
    assert {e.data["resident"] for e in envelopes} == {global_id(compound, p[0]) for p in PEOPLE}
    # Since issue 15 the health flags travel sealed, with their key for the services granted health data.
    courier = KeyCourier(runtime.settings.shared_key("JUWEI_HEALTH_KEY"))
    for record, envelope in zip(registered, envelopes, strict=True):
        assert envelope.data["elderly"] and "regular_medication" not in envelope.data
        assert "birth_year" not in envelope.data
        (header,) = [value for name, value in record.headers if name == SEALED_KEY_HEADER]
        subject, data_key = courier.unwrap(header)
        assert subject == f"{envelope.data['resident']}#health"
        assert _decrypt(data_key, subject, envelope.data["health"])["regular_medication"] is True
    runtime.database.dispose()
