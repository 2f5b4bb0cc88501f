"""A compound as the residents service tells it: residents events built with its published catalogue.

``SeededCompound`` makes the envelopes (buildings, households, residents with needs flags, logistics groups
with A/B shifts and a leader, information officers); ``feed`` hands them to a supplies runtime exactly as
its consumer does (inbox row, then the handler, one transaction) so API tests need no broker. The Kafka
test publishes the very same envelopes to the real broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert

from contracts import residents as rev
from juwei.consumer import Delivery
from juwei.events import DomainEvent, Envelope, dump_json, new_event_id, payload, utcnow
from juwei.service import Runtime
from juwei.store import inbox_table
from tests.sealing import HEALTH_SEAL

SHIFTS = "AAABBB"  # six volunteers per logistics group: three on shift A, three on B


@dataclass
class SeededCompound:
    """``households_per_floor`` rooms on each of ``floors`` floors of ``buildings`` buildings; residents
    are spread round-robin over the households; every ``elderly_every``-th resident is elderly and every
    ``infant_every``-th (offset by one) an infant."""

    compound: str = "c1"
    buildings: int = 3
    floors: int = 6
    rooms: int = 4
    residents: int = 60
    elderly_every: int = 7
    infant_every: int = 11
    envelopes: list[Envelope] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    def g(self, local: str) -> str:
        return f"{self.compound}:{local}"

    def household(self, building: int, floor: int, room: int) -> str:
        return f"h{building}-{floor:02d}{room:02d}"

    def households(self) -> list[tuple[int, int, int]]:
        return [
            (b, f, r)
            for b in range(1, self.buildings + 1)
            for f in range(1, self.floors + 1)
            for r in range(1, self.rooms + 1)
        ]

    def _add(self, subject: str, event: DomainEvent) -> None:
        version = self.versions.get(subject, 0) + 1
        self.versions[subject] = version
        event_id = new_event_id()
        event = HEALTH_SEAL.seal(event_id, event)  # the health flags leave residents sealed
        self.envelopes.append(
            Envelope(
                id=event_id,
                source="/juwei/residents",
                type=event.type_name(),
                subject=subject,
                time=utcnow(),
                data=payload(event),
                compound=self.compound,
                streamversion=version,
                building=event.building_id(),
            )
        )

    def build(self) -> SeededCompound:
        for b in range(1, self.buildings + 1):
            building = self.g(str(b))
            self._add(
                f"building-{building}",
                rev.BuildingRegistered(
                    building=building,
                    number=str(b),
                    floors=self.floors,
                    rooms_per_floor=self.rooms,
                    lifts=2,
                    lift_capacity=10,
                ),
            )
        homes = self.households()
        for b, f, r in homes:
            household = self.g(self.household(b, f, r))
            self._add(
                f"household-{household}",
                rev.HouseholdRegistered(household=household, building=self.g(str(b)), floor=f, room=r),
            )
        for n in range(self.residents):
            b, f, r = homes[n % len(homes)]
            household = self.g(self.household(b, f, r))
            self._add(
                f"household-{household}",
                rev.ResidentRegistered(
                    resident=self.g(f"r{n}"),
                    household=household,
                    building=self.g(str(b)),
                    birth_year=1940 if n % self.elderly_every == 0 else 1985,
                    elderly=n % self.elderly_every == 0,
                    infant=n % self.infant_every == 1,
                    identity="sealed:v1:not-for-the-bus",
                ),
            )
        for b in range(1, self.buildings + 1):
            building = self.g(str(b))
            for slot in range(7):
                volunteer = self.g(self.volunteer(b, slot))
                self._add(f"volunteer-{volunteer}", rev.VolunteerEnlisted(volunteer=volunteer, building=building))
                if slot == 0:
                    role = rev.VolunteerRoleAssigned(volunteer=volunteer, building=building, role="information_officer")
                else:
                    role = rev.VolunteerRoleAssigned(
                        volunteer=volunteer,
                        building=building,
                        role="logistics",
                        shift=SHIFTS[slot - 1],
                        leader=slot == 1,
                    )
                self._add(f"roles-{building}", role)
        return self

    @staticmethod
    def volunteer(building: int, slot: int) -> str:
        """Slot 0 is the information officer; 1-3 shift A (1 leads), 4-6 shift B."""
        return f"v{building}-{slot}"

    def event(self, subject: str, event: DomainEvent) -> Envelope:
        """One more residents event (e.g. an erasure) for this compound."""
        self._add(subject, event)
        return self.envelopes[-1]


def feed(runtime: Runtime, envelopes: Iterable[Envelope], topic: str = "juwei.residents") -> int:
    """Received events into the supplies runtime as its consumer would: inbox row, handler, one transaction."""
    count = 0
    with runtime.database.unit_of_work() as session:
        for envelope in envelopes:
            seq = session.execute(
                insert(inbox_table)
                .returning(inbox_table.c.seq)
                .values(
                    consumer=runtime.group,
                    event_id=envelope.id,
                    type=envelope.type,
                    envelope=dump_json(envelope.to_cloudevent()).decode(),
                    received_at=utcnow(),
                )
            ).scalar_one()
            runtime.handle_received(
                session, Delivery(envelope, seq, topic, HEALTH_SEAL.sealed_keys(runtime, envelope.id))
            )
            count += 1
    return count


def seeded(runtime: Runtime, **kwargs: object) -> SeededCompound:
    compound = SeededCompound(**kwargs).build()  # type: ignore[arg-type]
    feed(runtime, compound.envelopes)
    return compound
