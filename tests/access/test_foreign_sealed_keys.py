"""A sealed-key header this service cannot open (sealed under another JUWEI_HEALTH_KEY) leaves the flags closed
and the event good: it is logged and handled, never retried into the dead letters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from juwei.consumer import Delivery
from juwei.events import new_event_id, stored_envelope, utcnow
from juwei.service import Runtime, load_definition
from juwei.settings import Settings
from juwei.vault import KeyCourier, new_master_key


def test_a_key_sealed_under_another_shared_key_is_refused_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUWEI_HEALTH_KEY", new_master_key())
    runtime = Runtime(load_definition("testing"), Settings(data_dir=tmp_path), f"sqlite:///{tmp_path / 't.db'}")
    runtime.migrate()
    foreign = KeyCourier(new_master_key()).wrap("c1:r1#health", os.urandom(32))[1]
    envelope = stored_envelope(new_event_id(), "/juwei/residents", "juwei.residents.Anything.v1", "resident-r1",
                               utcnow(), {}, "c1", 1, 1, None, None, None)  # fmt: skip
    delivery = Delivery(envelope=envelope, inbox_seq=1, topic="juwei.residents", sealed_keys=(foreign,))
    try:
        with runtime.database.unit_of_work() as session:
            runtime._take_keys(session, delivery)  # must not raise: the consumer would retry, then dead-letter
        with runtime.database.reading() as session:
            assert runtime.vault.data_keys(session, ["c1:r1#health"]) == {}  # nothing opened, nothing kept
    finally:
        runtime.database.dispose()
