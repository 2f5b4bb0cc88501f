"""The envelope and the type registry, as plain Python."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from juwei.events import Envelope, MalformedEvent, UnknownEventType, split_type
from tests.kernel.sample import Tallied, registry


def _envelope(**changes: object) -> Envelope:
    values: dict = {
        "id": "e1",
        "source": "/juwei/desk",
        "type": "juwei.sample.Tallied.v2",
        "subject": "tally-7",
        "time": datetime(2022, 4, 10, 8, 0, tzinfo=UTC),
        "data": {"building": "7", "amount": 3, "note": "楼栋"},
        "compound": "c1",
        "streamversion": 4,
        "position": 42,
        "building": "7",
    }
    values.update(changes)
    return Envelope(**values)


def test_structured_round_trip_keeps_every_attribute() -> None:
    envelope = _envelope(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    body = envelope.to_cloudevent()
    assert body["specversion"] == "1.0"
    assert body["time"] == "2022-04-10T08:00:00Z"
    assert Envelope.from_cloudevent(body) == envelope


def test_binary_mode_puts_attributes_in_headers_and_keys_by_building() -> None:
    key, value, headers = _envelope().to_kafka()
    assert key == b"7"
    names = dict(headers)
    assert names["ce_type"] == b"juwei.sample.Tallied.v2"
    assert names["ce_position"] == b"42"
    assert Envelope.from_kafka(value, headers) == _envelope()


def test_key_falls_back_to_the_stream_without_a_building() -> None:
    assert _envelope(building=None).key == "tally-7"


def test_upcaster_turns_v1_into_v2() -> None:
    event = registry.decode("juwei.sample.Tallied.v1", {"building": "3", "count": 5})
    assert event == Tallied(building="3", amount=5, note="")


def test_unknown_type_and_bad_payload_are_told_apart() -> None:
    with pytest.raises(UnknownEventType):
        registry.decode("juwei.sample.Missing.v1", {})
    with pytest.raises(MalformedEvent):
        registry.decode("juwei.sample.Tallied.v2", {"building": "3"})


@pytest.mark.parametrize(
    ("value", "headers"),
    [
        (b"{not json", [("ce_specversion", b"1.0")]),
        (b"{}", [("ce_specversion", b"1.0"), ("ce_id", b"x")]),
        (None, [("ce_specversion", b"1.0")]),
        (b"[]", [("ce_specversion", b"1.0"), ("ce_id", b"x")]),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(value: bytes | None, headers: list) -> None:
    with pytest.raises(MalformedEvent):
        Envelope.from_kafka(value, headers)


def test_type_names_carry_a_version() -> None:
    assert split_type("juwei.residents.HouseholdRegistered.v12") == ("juwei.residents.HouseholdRegistered", 12)
    with pytest.raises(MalformedEvent):
        split_type("HouseholdRegistered")
