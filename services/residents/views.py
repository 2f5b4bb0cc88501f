"""Read models of the residents service: projections of its own events, rebuilt by ``juwei replay residents``.

Ids in the tables are the district-wide ids the events carry (``<compound>:<id>``); the API speaks in
ids local to a compound. Sealed identity tokens are copied from the private part of the events: they
stay unreadable without the resident's key (erasure shreds it).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)

from contracts.access import CompoundPlacements, Departures
from contracts.residents import (
    BuildingRegistered,
    CompoundRegistered,
    CompoundZoneRulesSet,
    HouseholdRegistered,
    RepresentativeChosen,
    ResidentArrived,
    ResidentErased,
    ResidentIdentityCorrected,
    ResidentMoved,
    ResidentNeedsChanged,
    ResidentRegistered,
    StaffAssigned,
    VolunteerEnlisted,
    VolunteerRoleAssigned,
    VolunteerRoleReleased,
    VolunteerStoodDown,
    ZoneCaseRecorded,
    ZoneStatusChanged,
    registry,
)
from juwei.events import Envelope, types_of
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.residents.domain.alerts import identifier_of

tables = MetaData()

buildings = Table(
    "res_buildings",
    tables,
    Column("building", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("number", String(40), nullable=False),
    Column("floors", Integer, nullable=False),
    Column("rooms_per_floor", Integer, nullable=False),
    Column("lifts", Integer, nullable=False),
    Column("lift_capacity", Integer, nullable=False),
)
households = Table(
    "res_households",
    tables,
    Column("household", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("floor", Integer, nullable=False),
    Column("room", Integer, nullable=False),
    Column("representative", String(100), nullable=True),
)
residents = Table(
    "res_residents",
    tables,
    Column("resident", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("household", String(100), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("birth_year", Integer, nullable=False),
    Column("elderly", Boolean, nullable=False),
    Column("regular_medication", Boolean, nullable=False),
    Column("mobility_impaired", Boolean, nullable=False),
    Column("bedridden", Boolean, nullable=False),
    Column("pregnant", Boolean, nullable=False),
    Column("infant", Boolean, nullable=False),
    Column("identity", Text, nullable=True),
    Column("erased", Boolean, nullable=False),
)
staff_buildings = Table(
    "res_staff_buildings",
    tables,
    Column("staff", String(100), primary_key=True),
    Column("building", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
)
volunteers = Table(
    "res_volunteers",
    tables,
    Column("volunteer", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("skills", Text, nullable=False),
)
roles = Table(
    "res_roles",
    tables,
    Column("building", String(100), primary_key=True),
    Column("volunteer", String(100), primary_key=True),
    Column("role", String(40), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("shift", String(1), nullable=True),
    Column("leader", Boolean, nullable=False),
)
zones = Table(
    "res_zones",
    tables,
    Column("scope_id", String(100), primary_key=True),  # the building id, or the compound id for its zone
    Column("compound", String(64), nullable=False, index=True),
    Column("scope", String(10), nullable=False),
    Column("zone", String(12), nullable=False),
    Column("last_case_on", Date, nullable=True),
    Column("decided_by_authority", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)
# The register of compounds: subdistrict, name and the compound's own zone rules (None: the deployment's).
compounds = Table(
    "res_compounds",
    tables,
    Column("compound", String(64), primary_key=True),
    Column("subdistrict", String(64), nullable=True, index=True),
    Column("name", String(100), nullable=True),
    Column("sealed_days", Integer, nullable=True),
    Column("precaution_days", Integer, nullable=True),
)
# Every zone change, as the public alert (CAP 1.2) that announces it; the row names no one.
zone_alerts = Table(
    "res_zone_alerts",
    tables,
    Column("identifier", String(48), primary_key=True),  # zone-<the ZoneStatusChanged event's id>
    Column("compound", String(64), nullable=False, index=True),
    Column("scope_id", String(100), nullable=False, index=True),  # the building id, or the compound id
    Column("position", BigInteger, nullable=False),
    Column("sent", DateTime(timezone=True), nullable=False),
    Column("zone", String(12), nullable=False),
    Column("previous", String(12), nullable=False),
    Column("last_case_on", Date, nullable=True),
    Column("days_since_last_case", Integer, nullable=True),
    Column("next_zone", String(12), nullable=True),
    Column("next_change_on", Date, nullable=True),
    Column("decided_by_authority", Boolean, nullable=False),
    Column("supersedes", String(48), nullable=True),  # the previous alert of the same building or compound
    Column("supersedes_sent", DateTime(timezone=True), nullable=True),
)
FLAGS = ("elderly", "regular_medication", "mobility_impaired", "bedridden", "pregnant", "infant")
HEALTH = ("regular_medication", "mobility_impaired", "bedridden", "pregnant")


class Register(Projection):
    """Buildings, households and residents as the committee sees them."""

    name = "register"
    tables = (buildings, households, residents)
    reads = (
        BuildingRegistered,
        HouseholdRegistered,
        ResidentRegistered,
        ResidentIdentityCorrected,
        ResidentMoved,
        ResidentArrived,
        ResidentNeedsChanged,
        ResidentErased,
        RepresentativeChosen,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = {**envelope.data, **(envelope.private or {})}
        kind = envelope.type.split(".")[2]
        compound = envelope.compound
        if kind == "BuildingRegistered":
            upsert(
                session,
                buildings,
                {"building": data["building"]},
                {
                    "compound": compound,
                    **{k: data[k] for k in ("number", "floors", "rooms_per_floor", "lifts", "lift_capacity")},
                },
            )
        elif kind == "HouseholdRegistered":
            upsert(
                session,
                households,
                {"household": data["household"]},
                {
                    "compound": compound,
                    "building": data["building"],
                    "floor": data["floor"],
                    "room": data["room"],
                    "representative": None,
                },
            )
        elif kind in ("ResidentRegistered", "ResidentArrived"):
            values = {
                "compound": compound,
                "household": data["household"],
                "building": data["building"],
                "birth_year": data["birth_year"],
                "erased": False,
                **{flag: bool(data.get(flag, False)) for flag in FLAGS},
            }
            if kind == "ResidentRegistered":
                values["identity"] = data.get("identity")
            upsert(session, residents, {"resident": data["resident"]}, values)
        elif kind == "ResidentIdentityCorrected":
            session.execute(
                update(residents).where(residents.c.resident == data["resident"]).values(identity=data.get("identity"))
            )
        elif kind == "ResidentNeedsChanged":
            session.execute(
                update(residents)
                .where(residents.c.resident == data["resident"])
                .values(**{flag: bool(data.get(flag, False)) for flag in FLAGS})
            )
        elif kind == "ResidentMoved":
            session.execute(
                update(households)
                .where(
                    households.c.household == data["from_household"], households.c.representative == data["resident"]
                )
                .values(representative=None)
            )
        elif kind == "ResidentErased":
            # Erasure takes the health flags with the identity: the sealed ones are shredded with the key.
            session.execute(
                update(residents)
                .where(residents.c.resident == data["resident"])
                .values(erased=True, identity=None, **dict.fromkeys(HEALTH, False))
            )
            session.execute(
                update(households)
                .where(households.c.household == data["household"], households.c.representative == data["resident"])
                .values(representative=None)
            )
        elif kind == "RepresentativeChosen":
            session.execute(
                update(households)
                .where(households.c.household == data["household"])
                .values(representative=data["resident"])
            )


class Teams(Projection):
    """Who covers which building, who volunteers where with which skills, and in which role."""

    name = "teams"
    tables = (staff_buildings, volunteers, roles)
    reads = (
        StaffAssigned,
        VolunteerEnlisted,
        VolunteerRoleAssigned,
        VolunteerRoleReleased,
        VolunteerStoodDown,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = registry.decode(envelope.type, envelope.data)
        data = envelope.data
        compound = envelope.compound
        kind = type(event).__name__
        if kind == "StaffAssigned":
            session.execute(delete(staff_buildings).where(staff_buildings.c.staff == data["staff"]))
            for building in data["buildings"]:
                session.execute(
                    staff_buildings.insert().values(staff=data["staff"], building=building, compound=compound)
                )
        elif kind == "VolunteerEnlisted":
            upsert(
                session,
                volunteers,
                {"volunteer": data["volunteer"]},
                {"compound": compound, "building": data["building"], "skills": json.dumps(data["skills"])},
            )
        elif kind == "VolunteerRoleAssigned":
            if data.get("replaces"):
                session.execute(
                    delete(roles).where(
                        roles.c.building == data["building"],
                        roles.c.volunteer == data["replaces"],
                        roles.c.role == data["role"],
                    )
                )
            upsert(
                session,
                roles,
                {"building": data["building"], "volunteer": data["volunteer"], "role": data["role"]},
                {"compound": compound, "shift": data.get("shift"), "leader": bool(data.get("leader"))},
            )
        elif kind == "VolunteerRoleReleased":
            session.execute(
                delete(roles).where(
                    roles.c.building == data["building"],
                    roles.c.volunteer == data["volunteer"],
                    roles.c.role == data["role"],
                )
            )
        elif kind == "VolunteerStoodDown":
            session.execute(delete(volunteers).where(volunteers.c.volunteer == data["volunteer"]))


class Zones(Projection):
    """Each building's and the compound's zone, for "when can we go out?"."""

    name = "zones"
    tables = (zones,)
    reads = (ZoneStatusChanged, ZoneCaseRecorded)
    _CASE_RECORDED = types_of(ZoneCaseRecorded)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = envelope.data
        scope_id = data.get("building") or envelope.compound
        if envelope.type in self._CASE_RECORDED:
            session.execute(
                update(zones)
                .where(zones.c.scope_id == scope_id)
                .values(last_case_on=_date(data["case_on"]), decided_by_authority=False)
            )
            return
        upsert(
            session,
            zones,
            {"scope_id": scope_id},
            {
                "compound": envelope.compound,
                "scope": data["scope"],
                "zone": data["zone"],
                "last_case_on": _date(data.get("last_case_on")),
                "decided_by_authority": bool(data.get("decided_by_authority")),
                "reason": data.get("reason", ""),
                "changed_at": envelope.time,
            },
        )


class Compounds(Projection):
    """The register of compounds and each one's zone rules."""

    name = "compounds"
    tables = (compounds,)
    reads = (CompoundRegistered, CompoundZoneRulesSet)
    _REGISTERED = types_of(CompoundRegistered)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = envelope.data
        if envelope.type in self._REGISTERED:
            values = {"subdistrict": data["subdistrict"], "name": data["label"]}
        else:
            values = {"sealed_days": data["sealed_days"], "precaution_days": data["precaution_days"]}
        upsert(session, compounds, {"compound": envelope.compound}, values)


class ZoneAlerts(Projection):
    """Each zone change as its alert, each one superseding the previous alert of its building (or compound)."""

    name = "zone_alerts"
    tables = (zone_alerts,)
    reads = (ZoneStatusChanged,)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = envelope.data
        scope_id = data.get("building") or envelope.compound
        identifier = identifier_of(envelope.id)
        position = envelope.position or 0
        previous = session.execute(
            select(zone_alerts.c.identifier, zone_alerts.c.sent)
            .where(
                zone_alerts.c.scope_id == scope_id,
                zone_alerts.c.position < position,
                zone_alerts.c.identifier != identifier,
            )
            .order_by(zone_alerts.c.position.desc())
            .limit(1)
        ).first()
        upsert(
            session,
            zone_alerts,
            {"identifier": identifier},
            {
                "compound": envelope.compound,
                "scope_id": scope_id,
                "position": position,
                "sent": envelope.time,
                "zone": data["zone"],
                "previous": data["previous"],
                "last_case_on": _date(data.get("last_case_on")),
                "days_since_last_case": data.get("days_since_last_case"),
                "next_zone": data.get("next_zone"),
                "next_change_on": _date(data.get("next_change_on")),
                "decided_by_authority": bool(data.get("decided_by_authority")),
                "supersedes": previous.identifier if previous else None,
                "supersedes_sent": previous.sent if previous else None,
            },
        )


def _date(value: Any) -> Any:
    from datetime import date

    return date.fromisoformat(value) if isinstance(value, str) else value


def projections() -> list[Projection]:
    from services.residents.rosters import MedicineSurvey, WorkGroups  # they add their tables to ``tables``

    return [
        Register(),
        Teams(),
        Zones(),
        ZoneAlerts(),
        Compounds(),
        Departures(),
        CompoundPlacements(),
        WorkGroups(),
        MedicineSurvey(),
    ]
