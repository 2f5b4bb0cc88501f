"""What the residents service does to the health flags, for tests that publish its events without it.

Residents' store seals the flags into ``health`` under a key per resident (``<resident>#health``), and its
relay hands that key, wrapped under the shared health key, to the services granted it (a Kafka header).
``HEALTH_SEAL.seal`` does the first with keys kept in memory; ``sealed_keys`` the second, for the receiving
runtime's shared key, as the ``Delivery`` of a consumer would carry it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic_core import to_jsonable_python

from juwei.events import DomainEvent, sealed_subject
from juwei.service import Runtime
from juwei.vault import _encrypt


class HealthSeal:
    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._handed: dict[str, list[tuple[str, bytes]]] = {}

    def seal(self, event_id: str, event: DomainEvent) -> DomainEvent:
        """The event as residents stores and publishes it (the sealed fields' plain values emptied)."""
        if not event.sealed_fields:
            return event
        update: dict[str, object] = {}
        for name, spec in event.sealed_fields.items():
            subject = sealed_subject(getattr(event, spec.subject), name)
            key = self._keys.setdefault(subject, AESGCM.generate_key(bit_length=256))
            value = {field: to_jsonable_python(getattr(event, field)) for field in spec.fields}
            update[name] = _encrypt(key, subject, {k: bool(v) for k, v in value.items()})
            update.update(dict.fromkeys(spec.fields))
            self._handed.setdefault(event_id, []).append((subject, key))
        return event.model_copy(update=update)

    def sealed_keys(self, runtime: Runtime, event_id: str) -> tuple[bytes, ...]:
        """The headers a record of this event carries, for a receiving ``runtime`` (none without its grant)."""
        courier = runtime.courier
        if courier is None:
            return ()
        return tuple(courier.wrap(subject, key)[1] for subject, key in self._handed.get(event_id, ()))


HEALTH_SEAL = HealthSeal()
