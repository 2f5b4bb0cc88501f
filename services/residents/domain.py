"""The residents service's domain rules: plain Python, no I/O.

Aggregates (``Building``, ``Household``, ``Staff``, ``Volunteer``, ``BuildingRoles``, ``Zone``) decide on
commands and record events; their state changes only in ``on_<Event>`` methods. Facts that live in other
aggregates (a building's size, which volunteers are enlisted where) are passed in by the caller.
Pure functions cover the rest: zone status by date, elderly, staff coverage, skill search and the
validation of bulk-import rows.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.residents import (
    BuildingRegistered,
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
)
from juwei.aggregate import Aggregate, DomainRuleViolation

ELDERLY_AGE = 70
LOGISTICS_GROUP_SIZE = 6
MAX_BUILDINGS_PER_STAFF = 5
SEALED_DAYS = 7
PRECAUTION_DAYS = 14

ROLES = ("information_officer", "logistics", "sampling_point")
SHIFTS = ("A", "B")
# Strictest first.
ZONES = ("sealed", "controlled", "precaution")


def _violation(message: str, code: str, status: int | None = None) -> DomainRuleViolation:
    return DomainRuleViolation(message, code=code, status=status)


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

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.number: str | None = None
        self.floors = 0
        self.rooms_per_floor = 0
        self.lifts = 0
        self.lift_capacity = 0

    def register(self, number: str, floors: int, rooms_per_floor: int, lifts: int, lift_capacity: int) -> None:
        if self.exists:
            raise _violation(f"building {self.id} is already registered", "building-exists")
        if not str(number).strip():
            raise _violation("a building needs a number", "invalid-building", 422)
        if floors < 1:
            raise _violation(f"a building has at least 1 floor, not {floors}", "invalid-building", 422)
        if rooms_per_floor < 1:
            raise _violation(f"a floor has at least 1 room, not {rooms_per_floor}", "invalid-building", 422)
        if lifts < 0:
            raise _violation(f"lifts cannot be negative ({lifts})", "invalid-building", 422)
        if lifts > 0 and lift_capacity < 1:
            raise _violation("a building with lifts needs a lift capacity of at least 1", "invalid-building", 422)
        if lift_capacity < 0:
            raise _violation(f"lift capacity cannot be negative ({lift_capacity})", "invalid-building", 422)
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

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None
        self.floor = 0
        self.room = 0
        self.members: dict[str, Member] = {}
        self.representative: str | None = None

    def _require_registered(self) -> str:
        if self.building is None:
            raise _violation(f"household {self.id} is not registered", "household-unknown", 404)
        return self.building

    def _require_member(self, resident: str) -> Member:
        member = self.members.get(resident)
        if member is None:
            raise _violation(f"resident {resident} is not a member of household {self.id}", "not-a-member")
        return member

    def register(self, building: str, floor: int, room: int, *, floors: int, rooms_per_floor: int) -> None:
        """Register the household in ``building``; ``floors``/``rooms_per_floor`` are that building's size."""
        if self.exists:
            raise _violation(f"household {self.id} is already registered", "household-exists")
        if not 1 <= floor <= floors:
            raise _violation(
                f"building {building} has floors 1..{floors}; floor {floor} does not exist", "no-such-room", 422
            )
        if not 1 <= room <= rooms_per_floor:
            raise _violation(
                f"building {building} has rooms 1..{rooms_per_floor} per floor; room {room} does not exist",
                "no-such-room",
                422,
            )
        self.record(HouseholdRegistered(household=self.id, building=building, floor=floor, room=room))

    def add_resident(
        self, resident: str, birth_year: int, needs: Needs, *, today: date, identity: str | None = None
    ) -> None:
        """``identity`` is the sealed token of name, phone and ID number (see ``juwei.vault``)."""
        building = self._require_registered()
        if resident in self.members:
            raise _violation(f"resident {resident} already lives in household {self.id}", "resident-exists")
        if not 1900 <= birth_year <= today.year:
            raise _violation(f"birth year {birth_year} is not between 1900 and {today.year}", "invalid-resident", 422)
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

    def move_out(self, resident: str, to: Household, *, today: date) -> None:
        """Move ``resident`` from this household into ``to``: each household records its half of the move."""
        building = self._require_registered()
        member = self._require_member(resident)
        target_building = to._require_registered()
        if to.id == self.id:
            raise _violation(f"resident {resident} already lives in household {self.id}", "same-household")
        if resident in to.members:
            raise _violation(f"resident {resident} already lives in household {to.id}", "resident-exists")
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


# --- staff and volunteers ---------------------------------------------------------------------------------


class Staff(Aggregate):
    """A committee member and the buildings they cover."""

    stream_prefix = "staff"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.buildings: list[str] = []

    def assign(self, buildings: Iterable[str], *, known_buildings: Collection[str]) -> None:
        wanted = list(dict.fromkeys(buildings))
        unknown = [b for b in wanted if b not in known_buildings]
        if unknown:
            raise _violation(f"unknown buildings: {', '.join(unknown)}", "building-unknown", 404)
        if self.exists and sorted(wanted) == sorted(self.buildings):
            return
        self.record(StaffAssigned(staff=self.id, buildings=wanted))

    def on_StaffAssigned(self, event: StaffAssigned) -> None:
        self.buildings = list(event.buildings)


def normalise_skill(skill: str) -> str:
    return " ".join(skill.strip().lower().split())


class Volunteer(Aggregate):
    stream_prefix = "volunteer"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None
        self.skills: list[str] = []
        self.stood_down = False

    @property
    def serving(self) -> bool:
        """Enlisted and not stood down: only then may a key be issued to them."""
        return self.exists and not self.stood_down

    def enlist(self, building: str, skills: Iterable[str] = ()) -> None:
        if self.exists:
            raise _violation(f"volunteer {self.id} is already enlisted", "volunteer-exists")
        clean = list(dict.fromkeys(s for s in (normalise_skill(x) for x in skills) if s))
        self.record(VolunteerEnlisted(volunteer=self.id, building=building, skills=clean))

    def stand_down(self, reason: str = "") -> None:
        """The volunteer stops serving; an id stood down stays retired (a returning volunteer gets a new one)."""
        if not self.exists:
            raise _violation(f"volunteer {self.id} is not enlisted", "volunteer-unknown", 404)
        if self.stood_down:
            raise _violation(f"volunteer {self.id} was already stood down", "volunteer-stood-down")
        assert self.building is not None
        self.record(VolunteerStoodDown(volunteer=self.id, building=self.building, reason=reason.strip()))

    def on_VolunteerEnlisted(self, event: VolunteerEnlisted) -> None:
        self.building = event.building
        self.skills = list(event.skills)

    def on_VolunteerStoodDown(self, event: VolunteerStoodDown) -> None:
        self.stood_down = True


class BuildingRoles(Aggregate):
    """The volunteer roles of one building (the aggregate's id is the building's id).

    Exactly one active information officer (a new one replaces the previous one explicitly); a logistics
    group of at most ``LOGISTICS_GROUP_SIZE`` split into shifts A and B with at most one leader; any number
    of sampling-point volunteers.
    """

    stream_prefix = "roles"
    group_size = LOGISTICS_GROUP_SIZE

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.information_officer: str | None = None
        self.logistics: dict[str, dict] = {}
        self.sampling_point: dict[str, str | None] = {}

    @property
    def logistics_leader(self) -> str | None:
        return next((v for v, slot in self.logistics.items() if slot["leader"]), None)

    def holds(self, volunteer: str, role: str) -> bool:
        if role == "information_officer":
            return self.information_officer == volunteer
        if role == "logistics":
            return volunteer in self.logistics
        return volunteer in self.sampling_point

    def assign(
        self,
        volunteer: str,
        role: str,
        *,
        enlisted: Mapping[str, str],
        shift: str | None = None,
        leader: bool = False,
    ) -> None:
        """Give ``volunteer`` a role here; ``enlisted`` maps each known volunteer to the building they live in."""
        if role not in ROLES:
            raise _violation(f"unknown role {role!r} (one of {', '.join(ROLES)})", "invalid-role", 422)
        home = enlisted.get(volunteer)
        if home is None:
            raise _violation(f"volunteer {volunteer} is not enlisted", "volunteer-unknown", 404)
        if home != self.id:
            raise _violation(
                f"volunteer {volunteer} is enlisted in building {home}, not {self.id}", "volunteer-other-building"
            )
        if self.holds(volunteer, role):
            raise _violation(f"volunteer {volunteer} already is {role} of building {self.id}", "already-assigned")
        if shift is not None and shift not in SHIFTS:
            raise _violation(f"shift must be A or B, not {shift!r}", "invalid-shift", 422)
        if leader and role != "logistics":
            raise _violation("only the logistics group has a leader", "invalid-role", 422)
        replaces = None
        if role == "information_officer":
            if shift is not None:
                raise _violation("the information officer works no shift", "invalid-shift", 422)
            replaces = self.information_officer
        elif role == "logistics":
            if shift is None:
                raise _violation("a logistics volunteer works shift A or shift B", "shift-required", 422)
            if len(self.logistics) >= self.group_size:
                raise _violation(
                    f"the logistics group of building {self.id} already has {self.group_size} volunteers",
                    "logistics-group-full",
                )
            if leader and self.logistics_leader is not None:
                raise _violation(
                    f"the logistics group of building {self.id} already has a leader ({self.logistics_leader});"
                    " release that role first",
                    "leader-exists",
                )
        self.record(
            VolunteerRoleAssigned(
                volunteer=volunteer, building=self.id, role=role, shift=shift, leader=leader, replaces=replaces
            )
        )

    def roles_of(self, volunteer: str) -> list[str]:
        """The roles ``volunteer`` holds in this building."""
        return [role for role in ROLES if self.holds(volunteer, role)]

    def release(self, volunteer: str, role: str, reason: str = "") -> None:
        if not self.holds(volunteer, role):
            raise _violation(f"volunteer {volunteer} is not {role} of building {self.id}", "not-assigned")
        self.record(VolunteerRoleReleased(volunteer=volunteer, building=self.id, role=role, reason=reason))

    def on_VolunteerRoleAssigned(self, event: VolunteerRoleAssigned) -> None:
        if event.role == "information_officer":
            self.information_officer = event.volunteer
        elif event.role == "logistics":
            self.logistics[event.volunteer] = {"shift": event.shift, "leader": event.leader}
        else:
            self.sampling_point[event.volunteer] = event.shift

    def on_VolunteerRoleReleased(self, event: VolunteerRoleReleased) -> None:
        if event.role == "information_officer":
            if self.information_officer == event.volunteer:
                self.information_officer = None
        elif event.role == "logistics":
            self.logistics.pop(event.volunteer, None)
        else:
            self.sampling_point.pop(event.volunteer, None)


@dataclass(frozen=True)
class Coverage:
    uncovered: list[str]
    overloaded: dict[str, int]


def staff_coverage(
    assignments: Mapping[str, Iterable[str]], buildings: Iterable[str], max_buildings: int = MAX_BUILDINGS_PER_STAFF
) -> Coverage:
    """Buildings no staff member covers, and staff covering more than ``max_buildings`` (a warning)."""
    covered: set[str] = set()
    overloaded: dict[str, int] = {}
    for staff, theirs in assignments.items():
        mine = set(theirs)
        covered |= mine
        if len(mine) > max_buildings:
            overloaded[staff] = len(mine)
    uncovered = [b for b in dict.fromkeys(buildings) if b not in covered]
    return Coverage(uncovered=uncovered, overloaded=dict(sorted(overloaded.items())))


def find_by_skill(
    volunteers: Iterable[tuple[str, str, Iterable[str]]], skill: str, buildings: Collection[str] | None = None
) -> list[tuple[str, str]]:
    """(volunteer, building) of the volunteers with ``skill`` (case-insensitive), optionally in ``buildings``."""
    wanted = normalise_skill(skill)
    found = [
        (volunteer, building)
        for volunteer, building, skills in volunteers
        if (buildings is None or building in buildings) and wanted in {normalise_skill(s) for s in skills}
    ]
    return sorted(found, key=lambda vb: (vb[1], vb[0]))


# --- zone status ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneView:
    """A zone and the answer to "when can we go out?"."""

    zone: str
    last_case_on: date | None
    days_since_last_case: int | None
    next_zone: str | None
    next_change_on: date | None


def zone_for(
    last_case_on: date | None, today: date, sealed_days: int = SEALED_DAYS, precaution_days: int = PRECAUTION_DAYS
) -> ZoneView:
    """Shanghai, April 2022: sealed with a case in the last ``sealed_days`` days, controlled after that,
    precaution after ``precaution_days`` days without a case (and when there never was one)."""
    if not 1 <= sealed_days < precaution_days:
        raise ValueError(f"need 1 <= sealed_days < precaution_days, got {sealed_days}, {precaution_days}")
    if last_case_on is None:
        return ZoneView("precaution", None, None, None, None)
    days = (today - last_case_on).days
    if days < 0:
        raise _violation(f"the last case ({last_case_on}) is after today ({today})", "case-in-future", 422)
    if days < sealed_days:
        return ZoneView("sealed", last_case_on, days, "controlled", last_case_on + timedelta(days=sealed_days))
    if days < precaution_days:
        return ZoneView("controlled", last_case_on, days, "precaution", last_case_on + timedelta(days=precaution_days))
    return ZoneView("precaution", last_case_on, days, None, None)


def strictest(zones: Iterable[str]) -> str:
    """The strictest of some zones (precaution when there are none)."""
    return min(zones, key=ZONES.index, default="precaution")


class Zone(Aggregate):
    """The zone of one building (id ``<compound>:<building>``) or of a whole compound (id: the compound).

    The zone follows the days since the last case (``zone_for``) unless the authorities decided otherwise;
    their decision holds until the next case, and a new case always re-seals. ``ZoneStatusChanged`` is
    recorded only when the zone (or whether it is held by an authority decision) changes.
    """

    stream_prefix = "zone"
    sealed_days = SEALED_DAYS
    precaution_days = PRECAUTION_DAYS

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.zone = "precaution"
        self.last_case_on: date | None = None
        self.by_authority = False
        self.reason = ""

    @property
    def scope(self) -> str:
        return "building" if ":" in self.id else "compound"

    @property
    def building(self) -> str | None:
        return None if self.scope == "compound" else self.id

    def derived(self, today: date) -> ZoneView:
        return zone_for(self.last_case_on, today, self.sealed_days, self.precaution_days)

    def view(self, today: date) -> ZoneView:
        """What residents see: the zone in force, days since the last case and the next change (if known)."""
        derived = self.derived(today)
        if self.by_authority:  # holds until the next case: no date for the next change
            return ZoneView(self.zone, self.last_case_on, derived.days_since_last_case, None, None)
        return derived

    def _change(self, zone: str, today: date, reason: str, by_authority: bool) -> None:
        if zone == self.zone and by_authority == self.by_authority:
            return
        derived = self.derived(today)
        follows_days = derived.zone == zone
        self.record(
            ZoneStatusChanged(
                scope=self.scope,
                building=self.building,
                zone=zone,
                previous=self.zone,
                reason=reason,
                last_case_on=self.last_case_on,
                days_since_last_case=derived.days_since_last_case,
                next_zone=derived.next_zone if follows_days and not by_authority else None,
                next_change_on=derived.next_change_on if follows_days and not by_authority else None,
                decided_by_authority=by_authority,
            )
        )

    def record_case(self, case_on: date, *, today: date) -> None:
        """A confirmed case in this building (for the compound: in any of its buildings) on ``case_on``."""
        if case_on > today:
            raise _violation(f"a case on {case_on} is in the future (today is {today})", "case-in-future", 422)
        newer = self.last_case_on is None or case_on > self.last_case_on
        if not newer and not self.by_authority:
            return
        latest = max(case_on, self.last_case_on or case_on)
        self.record(ZoneCaseRecorded(scope=self.scope, building=self.building, case_on=latest))
        derived = self.derived(today)
        self._change(derived.zone, today, f"confirmed case on {case_on.isoformat()}", False)

    def refresh(self, today: date) -> None:
        """Let the days count: move to the zone the days since the last case call for, unless decided."""
        if self.by_authority:
            return
        derived = self.derived(today)
        days = derived.days_since_last_case
        reason = "no case ever" if days is None else f"{days} days without a new case"
        self._change(derived.zone, today, reason, False)

    def decide(self, zone: str, reason: str, *, today: date) -> None:
        """Set the zone by decision of the authorities; it holds until the next case."""
        if zone not in ZONES:
            raise _violation(f"unknown zone {zone!r} (one of {', '.join(ZONES)})", "invalid-zone", 422)
        if not reason.strip():
            raise _violation("an authority decision needs its reason", "reason-required", 422)
        self._change(zone, today, reason.strip(), True)

    def reconcile(self, buildings: Iterable[Zone], *, today: date) -> None:
        """The compound's zone: the strictest of its buildings' zones today, unless the authorities decided.

        A case in any building later than the compound's last case counts as a new case for the compound.
        """
        if self.scope != "compound":
            raise _violation("only the compound's zone follows its buildings", "not-compound")
        buildings = list(buildings)
        cases = [b.last_case_on for b in buildings if b.last_case_on is not None]
        latest = max(cases, default=None)
        if latest is not None and (self.last_case_on is None or latest > self.last_case_on):
            self.record(ZoneCaseRecorded(scope="compound", building=None, case_on=latest))
        if self.by_authority:
            return
        zone = strictest(b.zone if b.by_authority else b.derived(today).zone for b in buildings)
        self._change(zone, today, f"strictest zone of {len(buildings)} buildings", False)

    def on_ZoneCaseRecorded(self, event: ZoneCaseRecorded) -> None:
        self.last_case_on = event.case_on
        self.by_authority = False

    def on_ZoneStatusChanged(self, event: ZoneStatusChanged) -> None:
        self.zone = event.zone
        self.by_authority = event.decided_by_authority
        self.reason = event.reason

    def snapshot_state(self) -> dict:
        state = super().snapshot_state()
        state["last_case_on"] = self.last_case_on.isoformat() if self.last_case_on else None
        return state

    def restore_state(self, state: dict) -> None:
        super().restore_state(state)
        if isinstance(self.last_case_on, str):
            self.last_case_on = date.fromisoformat(self.last_case_on)


# --- bulk import: row validation --------------------------------------------------------------------------

IMPORT_COLUMNS = (
    "building",
    "floor",
    "room",
    "household",
    "resident",
    "name",
    "phone",
    "id_number",
    "birth_year",
    "regular_medication",
    "mobility_impaired",
    "bedridden",
    "pregnant",
    "infant",
    "representative",
)
NEEDS_COLUMNS = ("regular_medication", "mobility_impaired", "bedridden", "pregnant", "infant")
# Empty flag cells mean "no": spreadsheets leave them blank.
_BOOLEANS = {"yes": True, "true": True, "1": True, "是": True, "no": False, "false": False, "0": False, "否": False}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1\d{10}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of a resident ID-card number."""
    return ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 18-character mainland ID-card number, or None when it is."""
    if not _ID_NUMBER.match(value):
        return "an ID-card number has 17 digits and a check digit (0-9 or X)"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "the ID-card number's birth date (characters 7-14) is not a date"
    if id_check_char(value[:17]) != value[17]:
        return "the ID-card number's check digit is wrong"
    return None


def normalise_phone(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    return digits


def phone_problem(value: str) -> str | None:
    """Why ``value`` (normalised) is not a mainland mobile number, or None when it is."""
    return None if _MOBILE.match(value) else "a mobile number has 11 digits and starts with 1"


@dataclass(frozen=True)
class RowError:
    """A problem with one cell: ``line`` counts the header as line 1, so data starts on line 2."""

    line: int
    column: str
    reason: str


@dataclass(frozen=True)
class ImportRow:
    line: int
    building: str
    floor: int
    room: int
    household: str
    resident: str
    name: str
    phone: str
    id_number: str
    birth_year: int
    needs: Needs
    representative: bool


def validate_rows(
    rows: Iterable[Mapping[str, str | None]], *, today: date | None = None
) -> tuple[list[ImportRow], list[RowError]]:
    """Check every row of an import (e.g. from ``csv.DictReader``) and report every bad cell.

    Returns the good rows and the errors; an import goes ahead only when there are no errors. Name,
    phone and ID number are checked but never leave the service (they are not in any event).
    """
    today = today or date.today()
    good: list[ImportRow] = []
    errors: list[RowError] = []
    seen_residents: dict[str, int] = {}
    seen_id_numbers: dict[str, int] = {}
    households: dict[str, tuple[tuple[str, int, int], int]] = {}
    representatives: dict[str, int] = {}
    header_checked = False
    for line, raw in enumerate(rows, start=2):
        if not header_checked:
            header_checked = True
            missing = [c for c in IMPORT_COLUMNS if c not in raw]
            if missing:
                errors.extend(RowError(1, c, "column missing from the header") for c in missing)
                return [], errors
        row_errors: list[RowError] = []

        def bad(column: str, reason: str, _line: int = line, _errors: list[RowError] = row_errors) -> None:
            _errors.append(RowError(_line, column, reason))

        if raw.get(None) is not None:  # type: ignore[call-overload]
            bad("", "the row has more cells than the header")
        cell = {c: (raw.get(c) or "").strip() for c in IMPORT_COLUMNS}

        for column in ("building", "household", "resident"):
            if not cell[column]:
                bad(column, "required")
            elif not _ID.match(cell[column]):
                bad(column, "use 1-64 letters, digits, '_', '.', ':' or '-'")

        numbers: dict[str, int] = {}
        for column in ("floor", "room"):
            try:
                numbers[column] = int(cell[column])
                if numbers[column] < 1:
                    bad(column, "must be 1 or more")
            except ValueError:
                bad(column, "required" if not cell[column] else f"not a whole number: {cell[column]!r}")

        if not cell["name"]:
            bad("name", "required")
        elif len(cell["name"]) > 100:
            bad("name", "longer than 100 characters")

        phone = normalise_phone(cell["phone"])
        if phone and not _MOBILE.match(phone):
            bad("phone", "a mobile number has 11 digits and starts with 1")

        id_number = cell["id_number"].upper()
        if id_number:
            problem = id_number_problem(id_number)
            if problem:
                bad("id_number", problem)

        birth_year = 0
        try:
            birth_year = int(cell["birth_year"])
            if not 1900 <= birth_year <= today.year:
                bad("birth_year", f"must be between 1900 and {today.year}")
            elif id_number and not id_number_problem(id_number) and int(id_number[6:10]) != birth_year:
                bad("birth_year", f"does not match the ID-card number's birth year {id_number[6:10]}")
        except ValueError:
            bad("birth_year", "required" if not cell["birth_year"] else f"not a year: {cell['birth_year']!r}")

        flags: dict[str, bool] = {}
        for column in (*NEEDS_COLUMNS, "representative"):
            value = cell[column].lower()
            if value == "":
                flags[column] = False
            elif value in _BOOLEANS:
                flags[column] = _BOOLEANS[value]
            else:
                bad(column, f"use yes/no, true/false, 1/0 or 是/否, not {cell[column]!r}")

        resident = cell["resident"]
        if resident:
            first = seen_residents.setdefault(resident, line)
            if first != line:
                bad("resident", f"resident {resident} is already on line {first}")
        if id_number:
            first = seen_id_numbers.setdefault(id_number, line)
            if first != line:
                bad("id_number", f"the same ID-card number is already on line {first}")
        household = cell["household"]
        if household and "floor" in numbers and "room" in numbers:
            place = (cell["building"], numbers["floor"], numbers["room"])
            known, first = households.setdefault(household, (place, line))
            if known != place:
                bad(
                    "household",
                    f"household {household} is in building {known[0]} floor {known[1]} room {known[2]} on line {first}",
                )
        if household and flags.get("representative"):
            first = representatives.setdefault(household, line)
            if first != line:
                bad("representative", f"household {household} already has its representative on line {first}")

        if row_errors:
            errors.extend(row_errors)
            continue
        good.append(
            ImportRow(
                line=line,
                building=cell["building"],
                floor=numbers["floor"],
                room=numbers["room"],
                household=household,
                resident=resident,
                name=cell["name"],
                phone=phone,
                id_number=id_number,
                birth_year=birth_year,
                needs=Needs(**{c: flags[c] for c in NEEDS_COLUMNS}),
                representative=flags["representative"],
            )
        )
    return good, errors
