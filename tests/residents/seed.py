"""Building blocks for residents tests that need a registered compound before the route under test."""

from __future__ import annotations

from contracts.ids import global_id
from juwei.repository import Repository
from juwei.service import Runtime
from services.residents.domain import Building


def register_buildings(runtime: Runtime, compound: str, count: int, floors: int = 18, rooms: int = 4) -> list[str]:
    """Buildings "1".."count" straight through the domain and the store (the register API is tested apart)."""
    repository = Repository(runtime.store, Building)
    with runtime.database.unit_of_work() as session:
        for number in range(1, count + 1):
            building = repository.load(session, global_id(compound, str(number)))
            building.register(str(number), floors, rooms, lifts=2, lift_capacity=10)
            repository.save(session, building, compound=compound)
    return [str(n) for n in range(1, count + 1)]
