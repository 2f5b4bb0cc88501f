"""A compound as the residents service publishes it: buildings, households and residents as CloudEvents.

Built with the published catalogue (``services/residents/events.py``), never with testing's own code, so
what testing reads is exactly what residents would put on ``juwei.residents``. Deterministic per seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.ids import global_id
from contracts.residents import BuildingRegistered, HouseholdRegistered, ResidentRegistered
from juwei.events import DomainEvent, Envelope, new_event_id, payload, utcnow
from tests.sealing import HEALTH_SEAL

SOURCE = "/juwei/residents"


@dataclass
class Compound:
    """What was generated: the envelopes in publishing order and who lives where (local ids)."""

    compound: str
    envelopes: list[Envelope] = field(default_factory=list)
    buildings: dict[str, dict[str, int]] = field(default_factory=dict)
    # resident → (building, household, floor, bedridden)
    residents: dict[str, tuple[str, str, int, bool]] = field(default_factory=dict)
    _versions: dict[str, int] = field(default_factory=dict)
    _clock: datetime = field(default_factory=utcnow)

    def publish(self, stream: str, event: DomainEvent) -> None:
        version = self._versions.get(stream, 0) + 1
        self._versions[stream] = version
        self._clock += timedelta(microseconds=1)
        event_id = new_event_id()
        event = HEALTH_SEAL.seal(event_id, event)  # the health flags leave residents sealed
        self.envelopes.append(
            Envelope(
                id=event_id,
                source=SOURCE,
                type=event.type_name(),
                subject=stream,
                time=self._clock,
                data=payload(event),
                compound=self.compound,
                streamversion=version,
                building=event.building_id(),
            )
        )

    def room_of(self, resident: str) -> int:
        return int(self.residents[resident][1][-2:])  # households are named h<building>-<floor><room>

    def households_of(self, building: str) -> dict[str, list[str]]:
        homes: dict[str, list[str]] = {}
        for resident, (b, household, _floor, _bedridden) in self.residents.items():
            if b == building:
                homes.setdefault(household, []).append(resident)
        return homes


def make_compound(
    compound: str,
    buildings: int = 25,
    residents: int = 5000,
    floors: tuple[int, ...] = (18, 26, 33),
    rooms_per_floor: int = 6,
    bedridden_share: float = 0.004,
    seed: int = 2022,
) -> Compound:
    """``buildings`` high-rises sharing ``residents`` people as evenly as whole households allow."""
    rng = random.Random(seed)
    made = Compound(compound)
    per_building = [residents // buildings + (1 if n < residents % buildings else 0) for n in range(buildings)]
    serial = 0
    for number in range(1, buildings + 1):
        building = str(number)
        height = floors[(number - 1) % len(floors)]
        lifts, capacity = (2, 10) if height > 20 else (1, 8)
        gid = global_id(compound, building)
        made.buildings[building] = {"floors": height, "lifts": lifts, "lift_capacity": capacity}
        made.publish(
            f"building-{gid}",
            BuildingRegistered(
                building=gid,
                number=building,
                floors=height,
                rooms_per_floor=rooms_per_floor,
                lifts=lifts,
                lift_capacity=capacity,
            ),
        )
        rooms = [(floor, room) for floor in range(1, height + 1) for room in range(1, rooms_per_floor + 1)]
        rng.shuffle(rooms)
        left = per_building[number - 1]
        # Households of 1 to 5 people until the building's share is housed (and rooms remain).
        for floor, room in rooms:
            if left == 0:
                break
            size = min(left, rng.choice((1, 2, 2, 3, 3, 3, 4, 5)))
            household = f"h{building}-{floor:02d}{room:02d}"
            hid = global_id(compound, household)
            made.publish(f"household-{hid}", HouseholdRegistered(household=hid, building=gid, floor=floor, room=room))
            for _ in range(size):
                serial += 1
                resident = f"r{serial:05d}"
                bedridden = rng.random() < bedridden_share
                made.residents[resident] = (building, household, floor, bedridden)
                made.publish(
                    f"household-{hid}",
                    ResidentRegistered(
                        resident=global_id(compound, resident),
                        household=hid,
                        building=gid,
                        birth_year=rng.randint(1930, 2021),
                        bedridden=bedridden,
                    ),
                )
            left -= size
        if left:
            raise ValueError(f"building {building} has too few rooms for its {per_building[number - 1]} residents")
    return made
