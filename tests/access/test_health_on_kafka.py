"""On the real Kafka: residents' health flags travel sealed, the services granted health (supplies, testing)
still read them, notify cannot, and erasing a resident shreds their flags in every service.

Four real runtimes (residents with its relay; supplies, testing and notify each with a consumer group of its
own, joined at the end of the shared topic) and a compound of its own, imported over HTTP with realistic
names, mobiles, ID numbers and needs flags. Every record of the compound on ``juwei.residents`` is scanned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Table, select

from contracts import roles as r
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import dead_letter_topic
from juwei.events import Envelope
from juwei.service import Runtime, create_app, load_definition
from juwei.settings import Settings
from juwei.store import inbox_table
from juwei.vault import SEALED_KEY_HEADER, subject_keys_table
from services.residents import views as residents_views
from services.residents.domain import IMPORT_COLUMNS
from services.residents.importing import BUILDING_COLUMNS
from services.supplies import views as supplies_views
from services.testing import views as testing_views
from tests.access.world import as_csv, building_rows, resident_rows
from tests.conftest import both_databases
from tests.kernel.harness import on_topic, wait_for
from tests.testing.mass_round import join_at_the_end

NEEDS = ("regular_medication", "mobility_impaired", "bedridden", "pregnant")


def _rows() -> list[dict[str, object]]:
    rows = resident_rows(2, 4, 4, start=9000)
    for n, row in enumerate(rows):
        row["pregnant"] = "是" if n % 7 == 2 else ""
        row["mobility_impaired"] = "yes" if n % 9 == 4 else ""
        row["bedridden"] = "yes" if n % 11 == 6 else ""
    return rows


def _flags(runtime: Runtime, table: Table, compound: str, columns: tuple[str, ...]) -> dict[str, dict[str, bool]]:
    with runtime.database.reading() as session:
        rows = session.execute(select(table).where(table.c.compound == compound)).mappings().all()
    return {row["resident"]: {c: bool(row[c]) for c in columns} for row in rows}


def _health_keys(runtime: Runtime, compound: str) -> set[str]:
    with runtime.database.reading() as session:
        subjects = session.execute(
            select(subject_keys_table.c.subject).where(subject_keys_table.c.subject.like(f"{compound}:%#health"))
        )
        return set(subjects.scalars())


@both_databases
def test_health_flags_travel_sealed_reach_granted_services_only_and_erasure_shreds_them_everywhere(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str
) -> None:
    compound = f"hk{suffix}"
    if broker is not None:
        broker.create_topics(["juwei.residents", "juwei.testing", dead_letter_topic("juwei.residents")])
    settings = Settings(kafka_bootstrap=kafka, today=date(2022, 4, 12), data_dir=tmp_path / "data")
    runtimes: dict[str, Runtime] = {}
    for name in ("residents", "supplies", "testing", "notify"):
        runtimes[name] = Runtime(load_definition(name), settings, database_url=new_database(name))
        runtimes[name].migrate()
    residents = runtimes["residents"]
    consumers = {
        name: join_at_the_end(runtimes[name], f"{name}-health-{suffix}") for name in ("supplies", "testing", "notify")
    }
    rows = _rows()
    people = {f"{compound}:{row['resident']}": row for row in rows}
    with residents.database.unit_of_work() as session:
        operator = issue_key(session, r.DISTRICT_OPERATOR, None, holder=Holder("official", "test operator")).key
    headers = {"X-API-Key": operator, "content-type": "text/csv"}
    relay = residents.make_relay()

    def publish_and_consume(done: Callable[[], bool]) -> None:
        while relay.publish_once():
            pass

        def caught_up() -> bool:
            for consumer in consumers.values():
                consumer.poll_once(300)
            return done()

        wait_for(caught_up, timeout=120, what="the consumers to catch up with juwei.residents")

    try:
        with TestClient(create_app(residents, background=False)) as client:
            base = f"/compounds/{compound}/import"
            sheet = as_csv(building_rows(2, 4, 4), BUILDING_COLUMNS)
            assert client.post(base, params={"kind": "buildings"}, content=sheet, headers=headers).status_code == 200
            sheet = as_csv(rows, IMPORT_COLUMNS)
            assert client.post(base, params={"kind": "residents"}, content=sheet, headers=headers).status_code == 200
            publish_and_consume(
                lambda: (
                    len(_flags(runtimes["supplies"], supplies_views.residents, compound, NEEDS)) == len(rows)
                    and len(_flags(runtimes["testing"], testing_views.residents, compound, ("bedridden",))) == len(rows)
                    and len(_health_tokens(runtimes["notify"], compound)) >= len(rows)
                )
            )
            imported = {rid: {flag: bool(row.get(flag)) for flag in NEEDS} for rid, row in people.items()}
            # The granted services read every flag as imported, opened with the keys handed over.
            assert _flags(runtimes["supplies"], supplies_views.residents, compound, NEEDS) == imported
            bedridden = _flags(runtimes["testing"], testing_views.residents, compound, ("bedridden",))
            assert bedridden == {rid: {"bedridden": flags["bedridden"]} for rid, flags in imported.items()}
            assert sum(f["pregnant"] for f in imported.values()) >= 3 and sum(f["bedridden"] for f in imported.values())
            health_keys = {f"{rid}#health" for rid in people}
            assert _health_keys(runtimes["supplies"], compound) == health_keys
            assert _health_keys(runtimes["testing"], compound) == health_keys
            # Notify received the same records but holds no key and opens nothing.
            assert _health_keys(runtimes["notify"], compound) == set()
            tokens = _health_tokens(runtimes["notify"], compound)
            assert len(tokens) == len(rows) and all(t.startswith("sealed:v1:") for t in tokens)
            with runtimes["notify"].database.reading() as session:
                bodies = [json.loads(b) for b in session.execute(select(inbox_table.c.envelope)).scalars()]
            received = [Envelope.from_stored(b) for b in bodies if b.get("compound") == compound]
            with runtimes["notify"].database.reading() as session:
                opened = runtimes["notify"].sealing.open(session, residents.store.registry, received)
            assert all(not envelope.private for envelope in opened)  # no key here: nothing opens

            # Every record of the compound on Kafka: no flag, no birth year, no identity in clear.
            records = on_topic(kafka, "juwei.residents", compound)
            assert len(records) >= len(rows) + 2 + 32
            secrets = [str(row[c]) for row in rows for c in ("name", "phone", "id_number")]
            for record in records:
                value = json.loads(record.value)
                text = record.value.decode() + "".join(v.decode(errors="replace") for _, v in record.headers)
                assert not set(NEEDS) & set(value) and "birth_year" not in value
                assert not [secret for secret in secrets if secret in text]
                if ".ResidentRegistered." in dict(record.headers)["ce_type"].decode():
                    assert value["health"].startswith("sealed:v1:")
                    assert sum(1 for name, _ in record.headers if name == SEALED_KEY_HEADER) == 1

            # Erasure: the resident's health key is shredded in residents, supplies and testing alike.
            erased = next(rid for rid, flags in imported.items() if flags["pregnant"])
            local = erased.split(":", 1)[1]
            assert client.delete(f"/compounds/{compound}/residents/{local}", headers=headers).status_code == 204

            def forgotten() -> bool:
                return all(
                    f"{erased}#health" not in _health_keys(runtimes[n], compound) for n in ("supplies", "testing")
                )

            publish_and_consume(forgotten)
            with residents.database.reading() as session:
                assert residents.vault.is_shredded(session, f"{erased}#health")
        # A rebuild from zero (own log, inbox) brings nothing back, and every other resident's flags stay.
        for name in ("residents", "supplies", "testing"):
            assert runtimes[name].projector.rebuild() > len(rows)
        after = _flags(runtimes["supplies"], supplies_views.residents, compound, NEEDS)
        assert after[erased] == dict.fromkeys(NEEDS, False)
        assert {rid: f for rid, f in after.items() if rid != erased} == {
            rid: f for rid, f in imported.items() if rid != erased
        }
        assert not _flags(runtimes["testing"], testing_views.residents, compound, ("bedridden",))[erased]["bedridden"]
        shown = _flags(residents, residents_views.residents, compound, NEEDS)
        assert (
            shown[erased] == dict.fromkeys(NEEDS, False)
            and sum(f["pregnant"] for f in shown.values()) == sum(f["pregnant"] for f in imported.values()) - 1
        )
    finally:
        relay.close()
        for consumer in consumers.values():
            consumer.close()
        for runtime in runtimes.values():
            runtime.database.dispose()


def _health_tokens(runtime: Runtime, compound: str) -> list[str]:
    # Only this compound's records that carry health: the inbox also holds buildings and other tests' events.
    with runtime.database.reading() as session:
        bodies = [json.loads(b) for b in session.execute(select(inbox_table.c.envelope)).scalars()]
    return [b["data"]["health"] for b in bodies if b.get("compound") == compound and b["data"].get("health")]
