"""Sealed fields and the keys handed over with them: plain Python over a real (SQLite) vault table."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from juwei.database import Database
from juwei.events import DomainEvent, EventRegistry, Sealed, new_event_id, payload, stored_envelope, utcnow
from juwei.migrate import upgrade
from juwei.sealing import Sealing
from juwei.vault import KeyCourier, Vault, new_master_key


class Checked(DomainEvent):
    event_type = "juwei.sample.Checked"
    private_fields: ClassVar[frozenset[str]] = frozenset({"fever"})
    sealed_fields: ClassVar[dict[str, Sealed]] = {"health": Sealed("person", ("fever",))}
    person: str
    health: str | None = None
    fever: bool | None = None


REGISTRY = EventRegistry()
REGISTRY.register(Checked)


@pytest.fixture
def database(tmp_path: Path) -> Database:
    made = Database(f"sqlite:///{tmp_path / 'vault.db'}")
    upgrade(made)
    return made


def _envelope(event: DomainEvent) -> object:
    return stored_envelope(new_event_id(), "/juwei/sample", event.type_name(), "s", utcnow(), payload(event), "c1", 1,
                           1, None, None, None)  # fmt: skip


def test_two_seals_of_one_person_in_one_batch_open_to_their_own_values(database: Database) -> None:
    vault = Vault(new_master_key())
    sealing = Sealing(lambda: vault)
    with database.unit_of_work() as session:
        first = sealing.seal(session, [Checked(person="p1", fever=False)])[0]
        second = sealing.seal(session, [Checked(person="p1", fever=True)])[0]
        assert first.fever is None and first.health and first.health.startswith("sealed:v1:")
        assert first.health != second.health and len(first.health) == len(second.health)  # lengths say nothing
        opened = sealing.open(session, REGISTRY, [_envelope(first), _envelope(second)])
    assert [envelope.private for envelope in opened] == [{"fever": False}, {"fever": True}]


def test_a_key_handed_over_opens_the_seal_elsewhere_until_it_is_shredded(database: Database, tmp_path: Path) -> None:
    shared = new_master_key()
    sealer, granted, other = Vault(new_master_key()), Vault(new_master_key()), KeyCourier(new_master_key())
    courier = KeyCourier(shared)
    elsewhere = Database(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    upgrade(elsewhere)
    with database.unit_of_work() as session:
        sealed = Sealing(lambda: sealer).seal(session, [Checked(person="p2", fever=True)])[0]
        headers = courier.headers(session, sealer, ["p2#health"])
    header = headers["p2#health"][1]
    with pytest.raises(ValueError):
        other.unwrap(header)  # another shared key: not for that service
    with elsewhere.unit_of_work() as session:
        assert courier.take(session, granted, [header]) == 1
        assert courier.take(session, granted, [header]) == 0  # taken once
        assert Sealing(lambda: granted).open(session, REGISTRY, [_envelope(sealed)])[0].private == {"fever": True}
        assert granted.shred(session, "p2")  # erasure: the person's keys, sealed fields' too
        assert Sealing(lambda: granted).open(session, REGISTRY, [_envelope(sealed)])[0].private is None
    with database.unit_of_work() as session:
        sealer.shred(session, "p2")
        assert courier.headers(session, sealer, ["p2#health"]) == {}  # nothing left to hand over
    elsewhere.dispose()
    database.dispose()
