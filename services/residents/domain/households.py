"""Buildings and the households living in them, with each resident's needs: plain Python, no I/O.

A building's size decides which rooms exist; a household is one room of one building and the residents living
there, one of them its representative in the building's group. ``elderly`` is derived from the birth year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from contracts.residents import (
    BuildingRegistered,
    HouseholdMarkedReachable,
    HouseholdMarkedUnreachable,
    HouseholdRegistered,
    RepresentativeChosen,
    ResidentArrived,
    ResidentErased,
    ResidentIdentityCorrected,
    ResidentMoved,
    ResidentNeedsChanged,
    ResidentRegistered,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound

ELDERLY_AGE = 70
# Why a household hears no group: nobody of it is in the group, or nobody has a smartphone.
REACH_REASONS = ("no_smartphone", "not_in_group")
# The marks' refusals in Chinese, by code (``ServiceDefinition.wording``).
REACH_WORDING = {"invalid-reach": "原因只能是“没有智能手机”（no_smartphone）或“不在楼栋群里”（not_in_group）"}


# --- residents' needs -------------------------------------------------------------------------------------


def elderly(birth_year: int, today: date, threshold: int = ELDERLY_AGE) -> bool:
    """Whether someone born in ``birth_year`` counts as elderly today (age by calendar year, ≥ threshold)."""
    return today.year - birth_year >= threshold


@dataclass(frozen=True)
class Needs:
    """The needs flags a resident is registered with (``elderly`` is derived from the birth year)."""

    regular_medication: bool = False
    mobility_impaired: bool = False
    bedridden: bool = False
    pregnant: bool = False
    infant: bool = False

    def flags(self) -> dict[str, bool]:
        return {
            "regular_medication": self.regular_medication,
            "mobility_impaired": self.mobility_impaired,
            "bedridden": self.bedridden,
            "pregnant": self.pregnant,
            "infant": self.infant,
        }


@dataclass
class Member:
    birth_year: int
    needs: Needs


# --- buildings and households -----------------------------------------------------------------------------


class Building(Aggregate):
    stream_prefix = "building"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        compound, _, building = id.partition(":")
        return NotFound(f"building {building} is not registered in compound {compound}")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.number: str | None = None
        self.floors = 0
        self.rooms_per_floor = 0
        self.lifts = 0
        self.lift_capacity = 0

    def register(self, number: str, floors: int, rooms_per_floor: int, lifts: int, lift_capacity: int) -> None:
        if self.exists:
            raise Conflict(f"building {self.id} is already registered", code="building-exists")
        if not str(number).strip():
            raise Invalid("a building needs a number", code="invalid-building")
        if floors < 1:
            raise Invalid(f"a building has at least 1 floor, not {floors}", code="invalid-building")
        if rooms_per_floor < 1:
            raise Invalid(f"a floor has at least 1 room, not {rooms_per_floor}", code="invalid-building")
        if lifts < 0:
            raise Invalid(f"lifts cannot be negative ({lifts})", code="invalid-building")
        if lifts > 0 and lift_capacity < 1:
            raise Invalid("a building with lifts needs a lift capacity of at least 1", code="invalid-building")
        if lift_capacity < 0:
            raise Invalid(f"lift capacity cannot be negative ({lift_capacity})", code="invalid-building")
        self.record(
            BuildingRegistered(
                building=self.id,
                number=str(number).strip(),
                floors=floors,
                rooms_per_floor=rooms_per_floor,
                lifts=lifts,
                lift_capacity=lift_capacity,
            )
        )

    def on_BuildingRegistered(self, event: BuildingRegistered) -> None:
        self.number = event.number
        self.floors = event.floors
        self.rooms_per_floor = event.rooms_per_floor
        self.lifts = event.lifts
        self.lift_capacity = event.lift_capacity


class Household(Aggregate):
    """One room of one building and the residents living there; one member is the representative."""

    stream_prefix = "household"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"household {id} is not registered", code="household-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None
        self.floor = 0
        self.room = 0
        self.members: dict[str, Member] = {}
        self.representative: str | None = None
        self.unreachable: str | None = None  # the reason, while urgent news must be carried to the door

    def _require_registered(self) -> str:
        if self.building is None:
            raise self.unknown(self.id)
        return self.building

    def _require_member(self, resident: str) -> Member:
        member = self.members.get(resident)
        if member is None:
            raise Conflict(f"resident {resident} is not a member of household {self.id}", code="not-a-member")
        return member

    def register(self, building: str, floor: int, room: int, *, floors: int, rooms_per_floor: int) -> None:
        """Register the household in ``building``; ``floors``/``rooms_per_floor`` are that building's size."""
        if self.exists:
            raise Conflict(f"household {self.id} is already registered", code="household-exists")
        if not 1 <= floor <= floors:
            raise Invalid(
                f"building {building} has floors 1..{floors}; floor {floor} does not exist", code="no-such-room"
            )
        if not 1 <= room <= rooms_per_floor:
            raise Invalid(
                f"building {building} has rooms 1..{rooms_per_floor} per floor; room {room} does not exist",
                code="no-such-room",
            )
        self.record(HouseholdRegistered(household=self.id, building=building, floor=floor, room=room))

    def add_resident(
        self, resident: str, birth_year: int, needs: Needs, *, today: date, identity: str | None = None
    ) -> None:
        """``identity`` is the sealed token of name, phone and ID number (see ``juwei.vault``)."""
        building = self._require_registered()
        if resident in self.members:
            raise Conflict(f"resident {resident} already lives in household {self.id}", code="resident-exists")
        if not 1900 <= birth_year <= today.year:
            raise Invalid(f"birth year {birth_year} is not between 1900 and {today.year}", code="invalid-resident")
        self.record(
            ResidentRegistered(
                resident=resident,
                household=self.id,
                building=building,
                birth_year=birth_year,
                elderly=elderly(birth_year, today),
                identity=identity,
                **needs.flags(),
            )
        )

    def correct_identity(self, resident: str, identity: str) -> None:
        building = self._require_registered()
        self._require_member(resident)
        self.record(
            ResidentIdentityCorrected(resident=resident, household=self.id, building=building, identity=identity)
        )

    def change_needs(self, resident: str, needs: Needs, *, today: date) -> None:
        """Record new needs flags; nothing is recorded when they are the same as before."""
        building = self._require_registered()
        member = self._require_member(resident)
        if member.needs == needs:
            return
        self.record(
            ResidentNeedsChanged(
                resident=resident,
                household=self.id,
                building=building,
                elderly=elderly(member.birth_year, today),
                **needs.flags(),
            )
        )

    def choose_representative(self, resident: str) -> None:
        building = self._require_registered()
        self._require_member(resident)
        if self.representative == resident:
            return
        self.record(
            RepresentativeChosen(household=self.id, resident=resident, building=building, previous=self.representative)
        )

    def mark_unreachable(self, reason: str) -> None:
        """The household hears no building group: urgent messages go on its officer's call list."""
        building = self._require_registered()
        if reason not in REACH_REASONS:
            raise Invalid(f"reason must be one of {', '.join(REACH_REASONS)}, not {reason!r}", code="invalid-reach")
        if self.unreachable == reason:
            return  # already marked so: marking twice records nothing
        self.record(
            HouseholdMarkedUnreachable(
                household=self.id, building=building, floor=self.floor, room=self.room, reason=reason
            )
        )

    def mark_reachable(self) -> None:
        """The household hears its group again; nothing is recorded when it was never marked."""
        building = self._require_registered()
        if self.unreachable is None:
            return
        self.record(HouseholdMarkedReachable(household=self.id, building=building))

    def move_out(self, resident: str, to: Household, *, today: date) -> None:
        """Move ``resident`` from this household into ``to``: each household records its half of the move."""
        building = self._require_registered()
        member = self._require_member(resident)
        target_building = to._require_registered()
        if to.id == self.id:
            raise Conflict(f"resident {resident} already lives in household {self.id}", code="same-household")
        if resident in to.members:
            raise Conflict(f"resident {resident} already lives in household {to.id}", code="resident-exists")
        self.record(
            ResidentMoved(
                resident=resident,
                from_household=self.id,
                from_building=building,
                to_household=to.id,
                building=target_building,
                floor=to.floor,
                room=to.room,
            )
        )
        to.record(
            ResidentArrived(
                resident=resident,
                household=to.id,
                building=target_building,
                from_household=self.id,
                birth_year=member.birth_year,
                elderly=elderly(member.birth_year, today),
                **member.needs.flags(),
            )
        )

    def erase(self, resident: str) -> None:
        building = self._require_registered()
        self._require_member(resident)
        self.record(ResidentErased(resident=resident, household=self.id, building=building))

    def on_HouseholdRegistered(self, event: HouseholdRegistered) -> None:
        self.building = event.building
        self.floor = event.floor
        self.room = event.room

    def _add(self, event: ResidentRegistered | ResidentArrived | ResidentNeedsChanged, birth_year: int) -> None:
        # The flags arrive opened from their seal (the repository opens them); a shredded seal reads as none.
        needs = Needs(
            regular_medication=bool(event.regular_medication),
            mobility_impaired=bool(event.mobility_impaired),
            bedridden=bool(event.bedridden),
            pregnant=bool(event.pregnant),
            infant=event.infant,
        )
        self.members[event.resident] = Member(birth_year=birth_year, needs=needs)

    def _remove(self, resident: str) -> None:
        self.members.pop(resident, None)
        if self.representative == resident:
            self.representative = None

    def on_ResidentRegistered(self, event: ResidentRegistered) -> None:
        self._add(event, event.birth_year or 0)

    def on_ResidentArrived(self, event: ResidentArrived) -> None:
        self._add(event, event.birth_year or 0)

    def on_ResidentNeedsChanged(self, event: ResidentNeedsChanged) -> None:
        self._add(event, self.members[event.resident].birth_year)

    def on_ResidentMoved(self, event: ResidentMoved) -> None:
        self._remove(event.resident)

    def on_ResidentErased(self, event: ResidentErased) -> None:
        self._remove(event.resident)

    def on_RepresentativeChosen(self, event: RepresentativeChosen) -> None:
        self.representative = event.resident

    def on_HouseholdMarkedUnreachable(self, event: HouseholdMarkedUnreachable) -> None:
        self.unreachable = event.reason

    def on_HouseholdMarkedReachable(self, event: HouseholdMarkedReachable) -> None:
        self.unreachable = None

    def snapshot_state(self) -> dict:
        state = super().snapshot_state()
        state["members"] = {
            rid: {"birth_year": m.birth_year, "needs": m.needs.flags()} for rid, m in self.members.items()
        }
        return state

    def restore_state(self, state: dict) -> None:
        state = dict(state)
        members = state.pop("members", {})
        super().restore_state(state)
        self.members = {
            rid: Member(birth_year=m["birth_year"], needs=Needs(**m["needs"])) for rid, m in members.items()
        }
