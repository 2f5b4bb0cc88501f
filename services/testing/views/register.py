"""Who lives on which floor of which building, who is bedridden, and which volunteers serve: testing's own copy,
fed by the residents service's events (through the inbox).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    bindparam,
    update,
)

from contracts.residents import (
    BuildingRegistered,
    HouseholdRegistered,
    ResidentArrived,
    ResidentErased,
    ResidentMoved,
    ResidentNeedsChanged,
    ResidentRegistered,
    VolunteerEnlisted,
    VolunteerStoodDown,
)
from contracts.residents import registry as residents_catalogue
from juwei.events import Envelope
from juwei.projection import Projection, upsert, write_many
from juwei.session import Session
from services.testing.views.schema import buildings, bulk_upsert, households, own_event, residents, volunteers


class Register(Projection):
    """Buildings, households and residents as the residents service published them."""

    name = "register"
    tables = (buildings, households, residents)
    reads = (
        BuildingRegistered,
        HouseholdRegistered,
        ResidentRegistered,
        ResidentMoved,
        ResidentArrived,
        ResidentNeedsChanged,
        ResidentErased,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """Rows kept in memory for the run (the last event about a row wins), then one executemany per shape.

        Reads the payloads as they came (``EventRegistry.trusted``): live, the runtime has already checked
        each against residents' catalogue (``Runtime.handle_received``), so one that breaks it never gets here.
        """
        built: dict[str, dict[str, Any]] = {}
        homes: dict[str, dict[str, Any]] = {}
        people: dict[str, dict[str, Any]] = {}
        changed: dict[str, dict[str, Any]] = {}  # residents registered before this run: only some columns change
        classes = residents_catalogue.classes
        for envelope in envelopes:
            # The bedridden flag comes opened from its seal in ``private`` (testing holds the keys handed over)
            # or, in events written before it was sealed, in clear; a shredded seal reads as not bedridden.
            type_name, data = residents_catalogue.trusted(envelope.type, own_event(envelope))
            kind = classes[type_name].__name__
            compound = envelope.compound
            if kind == "BuildingRegistered":
                built[data["building"]] = {
                    "building": data["building"],
                    "compound": compound,
                    **{k: data[k] for k in ("number", "floors", "lifts", "lift_capacity")},
                }
            elif kind == "HouseholdRegistered":
                homes[data["household"]] = {
                    "household": data["household"],
                    "compound": compound,
                    "building": data["building"],
                    "floor": data["floor"],
                    "room": data["room"],
                }
            elif kind in ("ResidentRegistered", "ResidentArrived"):
                changed.pop(data["resident"], None)  # the upsert sets every column
                people[data["resident"]] = {
                    "resident": data["resident"],
                    "compound": compound,
                    "household": data["household"],
                    "building": data["building"],
                    "bedridden": bool(data["bedridden"]),
                    "present": True,
                }
            else:
                if kind == "ResidentMoved":
                    values = {"household": data["to_household"], "building": data["building"]}
                elif kind == "ResidentNeedsChanged":
                    values = {"bedridden": bool(data["bedridden"])}
                else:
                    values = {"present": False}
                row = people.get(data["resident"])
                if row is not None:
                    row.update(values)
                else:
                    changed.setdefault(data["resident"], {}).update(values)
        bulk_upsert(session, buildings, ("building",), list(built.values()))
        bulk_upsert(session, households, ("household",), list(homes.values()))
        bulk_upsert(session, residents, ("resident",), list(people.values()))
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for resident, values in changed.items():
            shapes.setdefault(tuple(sorted(values)), []).append({"b_resident": resident, **values})
        for shape, rows in shapes.items():
            write_many(session, _resident_update(shape), rows)


_RESIDENT_UPDATES: dict[tuple[str, ...], Any] = {}


def _resident_update(columns: tuple[str, ...]) -> Any:
    """UPDATE tst_residents SET <columns> WHERE resident = :b_resident, built once per set of columns."""
    statement = _RESIDENT_UPDATES.get(columns)
    if statement is None:
        statement = _RESIDENT_UPDATES[columns] = (
            update(residents)
            .where(residents.c.resident == bindparam("b_resident"))
            .values({name: bindparam(name) for name in columns})
        )
    return statement


class Volunteers(Projection):
    """Who volunteers in the compound and still serves (a stood-down volunteer is kept, not serving)."""

    name = "volunteers"
    tables = (volunteers,)
    reads = (VolunteerEnlisted, VolunteerStoodDown)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = envelope.data
        serving = envelope.type.split(".")[2] == "VolunteerEnlisted"
        upsert(
            session,
            volunteers,
            {"volunteer": data["volunteer"]},
            {"compound": envelope.compound, "building": data["building"], "serving": serving},
        )
