"""Who may do and read what, the same in every service: the roles each kind of route admits, the feed's scope
per role, and what leaving the register takes away.

| role | events of the feed | health data |
| --- | --- | --- |
| district-operator | every compound (a compound key: its compound) | yes |
| committee-staff | its compound; only its buildings when the key names some (and events of no one building) | yes |
| information-officer | the types whose ``audience`` names it, in the key's buildings | yes |
| logistics-volunteer | the types whose ``audience`` names it, in the key's buildings | no |
| sampling-volunteer | the types whose ``audience`` names it, at the key's sampling point (testing) | no |
| subdistrict-staff | types whose ``audience`` names it (medicine, zones, rounds): its compound or subdistrict | yes |
| household | the types whose ``audience`` names it that name its own household | yes (its own) |
| external-consumer | the event types and compounds its grant names | only if granted |

A subdistrict's key (``juwei keys create --subdistrict``) reaches exactly the compounds residents' register places
in its subdistrict (``CompoundPlacements``); every other compound is refused.

A role whose work needs no event type of a service gets 403 from that service's feed, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends

from contracts import roles as r
from contracts.residents import CompoundRegistered, ResidentErased, VolunteerStoodDown
from contracts.roles import HEALTH_ROLES
from juwei.access import FeedRefused, FeedScope, bases
from juwei.auth import admit, require, revoke_keys_of
from juwei.callers import Caller, Holder
from juwei.events import Envelope, types_of
from juwei.projection import Projection
from juwei.session import Session
from juwei.settings import Settings
from juwei.subdistricts import place_compound
from juwei.vault import shred_subject

# The roles each kind of route admits, named once for every service: ``admit`` checks the role, then the key's
# scope over the compound in the path (a building the request touches is checked where it is known).
Staff = Annotated[Caller, Depends(admit(*r.STAFF))]
# Staff and the building's information officer (the register, chasing who is untested, questions).
Officers = Annotated[Caller, Depends(admit(*r.STAFF, r.INFORMATION_OFFICER))]
Logistics = Annotated[Caller, Depends(admit(*r.STAFF, r.LOGISTICS_VOLUNTEER))]
# A building's team: its information officer and its logistics group.
BuildingTeam = Annotated[Caller, Depends(admit(*r.STAFF, r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER))]
Volunteers = Annotated[
    Caller, Depends(admit(*r.STAFF, r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER, r.SAMPLING_VOLUNTEER))
]
Samplers = Annotated[Caller, Depends(admit(*r.STAFF, r.SAMPLING_VOLUNTEER))]
# Who works a testing round: the sampling points and the information officers who call the floors down.
RoundWorkers = Annotated[Caller, Depends(admit(*r.STAFF, r.SAMPLING_VOLUNTEER, r.INFORMATION_OFFICER))]
SelfReporters = Annotated[Caller, Depends(admit(*r.STAFF, r.INFORMATION_OFFICER, r.HOUSEHOLD))]
# Medicine runs: who reads the requests, who carries cards, who buys, who follows the custody chain.
MedicineReaders = Annotated[Caller, Depends(admit(*r.STAFF, r.INFORMATION_OFFICER, r.SUBDISTRICT_STAFF))]
CardCarriers = Annotated[Caller, Depends(admit(*r.STAFF, r.LOGISTICS_VOLUNTEER, r.SUBDISTRICT_STAFF))]
Buyers = Annotated[Caller, Depends(admit(*r.STAFF, r.SUBDISTRICT_STAFF))]
CustodyReaders = Annotated[
    Caller,
    Depends(admit(*r.STAFF, r.LOGISTICS_VOLUNTEER, r.INFORMATION_OFFICER, r.SUBDISTRICT_STAFF)),
]
# Who oversees a compound: its staff and the subdistrict office (the register of compounds, the overview).
Oversight = Annotated[Caller, Depends(admit(*r.STAFF, r.SUBDISTRICT_STAFF))]
# Everyone of the compound: staff, its volunteers, the subdistrict office and the households.
CompoundPeople = Annotated[Caller, Depends(admit(*(role for role in r.ALL if role != r.EXTERNAL_CONSUMER)))]

# Outside systems that subscribe to events by webhook, and the district operator who may do it for them.
Subscribers = Annotated[Caller, Depends(require(r.DISTRICT_OPERATOR, r.EXTERNAL_CONSUMER))]

# The fields by which an event names a household (its own, or one a resident moves from or to).
HOUSEHOLD_FIELDS = frozenset({"household", "households", "from_household", "to_household"})
POINT_FIELDS = frozenset({"point", "points"})

# A service's way to find the sampling point a key is bound to (district-wide id), if it knows points.
PointOf = Callable[[Session, Caller], str | None]


def health_key(variable: str) -> Callable[[Settings], str]:
    """``ServiceDefinition.health_key`` of a service granted health data: the key in ``variable``, shared by
    exactly the services granted (residents, supplies, testing; never notify)."""
    return lambda settings: settings.shared_key(variable)


def _compounds(caller: Caller) -> frozenset[str] | None:
    # One compound, a subdistrict's registered compounds, a grant's, or every compound (None).
    return caller.reach


def _buildings(caller: Caller) -> frozenset[str] | None:
    if caller.buildings is None or caller.compound is None:
        return None
    return frozenset(f"{caller.compound}:{building}" for building in caller.buildings)


def feed_access(point_of: PointOf | None = None) -> Callable[[Any, Session, Caller], FeedScope]:
    """The feed scope of a caller in a service (``ServiceDefinition.feed_access``), by the table above."""

    def scope(runtime: Any, session: Session, caller: Caller) -> FeedScope:
        service = runtime.definition.name
        classes = list(runtime.definition.registry.classes.values())
        role = caller.role
        if role == r.DISTRICT_OPERATOR:
            return FeedScope(compounds=_compounds(caller), health=True)
        if role == r.COMMITTEE_STAFF:
            return FeedScope(compounds=_compounds(caller), buildings=_buildings(caller), health=True)
        if role == r.EXTERNAL_CONSUMER:
            grant = caller.grant
            if grant is None or not grant.types:
                raise FeedRefused("this key's grant names no event types; the district operator grants them")
            granted = frozenset(cls.event_type for cls in classes if grant.names_type(cls.type_name()))
            if not granted:
                raise FeedRefused(f"this key's grant names no event type of {service}")
            return FeedScope(compounds=_compounds(caller), types=granted, health=grant.health)
        types = bases(classes, role)
        if not types:
            raise FeedRefused(f"the work of a {role} needs no events of {service}: its feed is not theirs to read")
        compounds = caller.reach
        if compounds is None:
            raise FeedRefused(f"a {role} key belongs to one compound or one subdistrict; this one names neither")
        health = role in HEALTH_ROLES
        if role == r.HOUSEHOLD:
            holder = caller.holder
            if holder is None or holder.kind != "household":
                raise FeedRefused("this household key names no household")
            return FeedScope(compounds, types, fields=HOUSEHOLD_FIELDS, values=frozenset({holder.id}), health=health)
        if role == r.SAMPLING_VOLUNTEER:
            point = point_of(session, caller) if point_of is not None else None
            if point is None:
                raise FeedRefused("this sampling volunteer's key is bound to no sampling point")
            return FeedScope(compounds, types, fields=POINT_FIELDS, values=frozenset({point}), health=health)
        return FeedScope(compounds, types, buildings=_buildings(caller), health=health)

    return scope


class Departures(Projection):
    """People who leave the register, in the transaction that learns of it: a volunteer stood down loses every
    key they hold here; an erased resident's keys here (sealed health flags handed over, prescriptions) are
    shredded.

    Not a read model: it owns no table, so a rebuild keeps what it did and repeats it harmlessly.
    """

    name = "departures"
    reads = (VolunteerStoodDown, ResidentErased)
    _stood_down = types_of(VolunteerStoodDown)

    def apply(self, session: Session, envelope: Envelope) -> None:
        if envelope.type in self._stood_down:
            revoke_keys_of(session, Holder("volunteer", envelope.data["volunteer"]))
        else:
            shred_subject(session, envelope.data["resident"])


class CompoundPlacements(Projection):
    """Which subdistrict each compound is registered in (``juwei.subdistricts``), learnt in every service from
    residents' register: a subdistrict's key reaches exactly those compounds, here as there.

    Its table is the kernel's; a rebuild places every compound again (an upsert), harmlessly.
    """

    name = "compound_placements"
    reads = (CompoundRegistered,)

    def apply(self, session: Session, envelope: Envelope) -> None:
        if envelope.compound:
            place_compound(session, envelope.compound, envelope.data["subdistrict"])
