"""Supplies' own copy of what it needs from ``juwei.residents`` (buildings, households, residents' needs flags,
logistics groups and information officers), fed by the consumer: supplies never asks the residents service.
"""

from __future__ import annotations

from sqlalchemy import (
    delete,
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
    VolunteerRoleAssigned,
    VolunteerRoleReleased,
)
from contracts.residents import registry as residents_catalogue
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.supplies.views.schema import FLAGS, HEALTH, buildings, households, residents, volunteer_roles


class Register(Projection):
    """Buildings, households, residents' needs and volunteer roles, as ``juwei.residents`` tells them."""

    name = "register"
    tables = (buildings, households, residents, volunteer_roles)
    reads = (
        BuildingRegistered,
        HouseholdRegistered,
        ResidentRegistered,
        ResidentMoved,
        ResidentArrived,
        ResidentNeedsChanged,
        ResidentErased,
        VolunteerRoleAssigned,
        VolunteerRoleReleased,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        # The health flags come opened from their seal in ``private`` (this service holds the keys handed
        # over); a shredded seal reads as no flag.
        event = residents_catalogue.decode(envelope.type, {**envelope.data, **(envelope.private or {})})
        compound = envelope.compound
        if isinstance(event, BuildingRegistered):
            upsert(
                session,
                buildings,
                {"building": event.building},
                {"compound": compound, "number": event.number, "floors": event.floors},
            )
        elif isinstance(event, HouseholdRegistered):
            upsert(
                session,
                households,
                {"household": event.household},
                {"compound": compound, "building": event.building, "floor": event.floor, "room": event.room},
            )
        elif isinstance(event, ResidentRegistered | ResidentArrived):
            upsert(
                session,
                residents,
                {"resident": event.resident},
                {
                    "compound": compound,
                    "household": event.household,
                    "building": event.building,
                    "erased": False,
                    **{flag: bool(getattr(event, flag)) for flag in FLAGS},
                },
            )
        elif isinstance(event, ResidentNeedsChanged):
            session.execute(
                update(residents)
                .where(residents.c.resident == event.resident)
                .values(**{flag: bool(getattr(event, flag)) for flag in FLAGS})
            )
        elif isinstance(event, ResidentMoved):
            session.execute(
                update(residents)
                .where(residents.c.resident == event.resident)
                .values(household=event.to_household, building=event.building)
            )
        elif isinstance(event, ResidentErased):
            session.execute(
                update(residents)
                .where(residents.c.resident == event.resident)
                .values(erased=True, **dict.fromkeys(HEALTH, False))
            )
        elif isinstance(event, VolunteerRoleAssigned):
            if event.role == "sampling_point":
                return
            if event.replaces:
                session.execute(
                    delete(volunteer_roles).where(
                        volunteer_roles.c.building == event.building,
                        volunteer_roles.c.volunteer == event.replaces,
                        volunteer_roles.c.role == event.role,
                    )
                )
            upsert(
                session,
                volunteer_roles,
                {"building": event.building, "volunteer": event.volunteer, "role": event.role},
                {"compound": compound, "shift": event.shift, "leader": event.leader},
            )
        elif isinstance(event, VolunteerRoleReleased):
            session.execute(
                delete(volunteer_roles).where(
                    volunteer_roles.c.building == event.building,
                    volunteer_roles.c.volunteer == event.volunteer,
                    volunteer_roles.c.role == event.role,
                )
            )
