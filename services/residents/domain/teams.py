"""Staff and volunteers: which buildings each staff member covers, who volunteers where with which skills, and
the volunteer roles of each building (one information officer, a logistics group of six in shifts A and B).
Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from contracts.residents import (
    StaffAssigned,
    VolunteerAvailabilitySet,
    VolunteerEnlisted,
    VolunteerRoleAssigned,
    VolunteerRoleReleased,
    VolunteerStoodDown,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound

LOGISTICS_GROUP_SIZE = 6
MAX_BUILDINGS_PER_STAFF = 5


ROLES = ("information_officer", "logistics", "sampling_point")
SHIFTS = ("A", "B")


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
            raise NotFound(f"unknown buildings: {', '.join(unknown)}", code="building-unknown")
        if self.exists and sorted(wanted) == sorted(self.buildings):
            return
        self.record(StaffAssigned(staff=self.id, buildings=wanted))

    def on_StaffAssigned(self, event: StaffAssigned) -> None:
        self.buildings = list(event.buildings)


def normalise_skill(skill: str) -> str:
    return " ".join(skill.strip().lower().split())


class Volunteer(Aggregate):
    stream_prefix = "volunteer"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        compound, _, volunteer = id.partition(":")
        return NotFound(f"volunteer {volunteer} is not enlisted in compound {compound}", code="volunteer-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None
        self.skills: list[str] = []
        self.availability: list[str] = []
        self.stood_down = False

    @property
    def serving(self) -> bool:
        """Enlisted and not stood down: only then may a key be issued to them."""
        return self.exists and not self.stood_down

    def enlist(self, building: str, skills: Iterable[str] = ()) -> None:
        if self.exists:
            raise Conflict(f"volunteer {self.id} is already enlisted", code="volunteer-exists")
        clean = list(dict.fromkeys(s for s in (normalise_skill(x) for x in skills) if s))
        self.record(VolunteerEnlisted(volunteer=self.id, building=building, skills=clean))

    def stand_down(self, reason: str = "") -> None:
        """The volunteer stops serving; an id stood down stays retired (a returning volunteer gets a new one)."""
        if not self.exists:
            raise NotFound(f"volunteer {self.id} is not enlisted", code="volunteer-unknown")
        if self.stood_down:
            raise Conflict(f"volunteer {self.id} was already stood down", code="volunteer-stood-down")
        assert self.building is not None
        self.record(VolunteerStoodDown(volunteer=self.id, building=self.building, reason=reason.strip()))

    def set_availability(self, slots: list[str]) -> bool:
        """Replace when the volunteer can work (``slots`` already checked, see ``workgroups.slots``); False when
        nothing changes."""
        if not self.serving:
            raise NotFound(
                f"志愿者 {self.id.partition(':')[2]} 未登记或已退出服务 (not serving)", code="volunteer-unknown"
            )
        if slots == self.availability:
            return False
        assert self.building is not None
        self.record(VolunteerAvailabilitySet(volunteer=self.id, building=self.building, availability=slots))
        return True

    def on_VolunteerAvailabilitySet(self, event: VolunteerAvailabilitySet) -> None:
        self.availability = list(event.availability)

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
            raise Invalid(f"unknown role {role!r} (one of {', '.join(ROLES)})", code="invalid-role")
        home = enlisted.get(volunteer)
        if home is None:
            raise NotFound(f"volunteer {volunteer} is not enlisted", code="volunteer-unknown")
        if home != self.id:
            raise Conflict(
                f"volunteer {volunteer} is enlisted in building {home}, not {self.id}", code="volunteer-other-building"
            )
        if self.holds(volunteer, role):
            raise Conflict(f"volunteer {volunteer} already is {role} of building {self.id}", code="already-assigned")
        if shift is not None and shift not in SHIFTS:
            raise Invalid(f"shift must be A or B, not {shift!r}", code="invalid-shift")
        if leader and role != "logistics":
            raise Invalid("only the logistics group has a leader", code="invalid-role")
        replaces = None
        if role == "information_officer":
            if shift is not None:
                raise Invalid("the information officer works no shift", code="invalid-shift")
            replaces = self.information_officer
        elif role == "logistics":
            if shift is None:
                raise Invalid("a logistics volunteer works shift A or shift B", code="shift-required")
            if len(self.logistics) >= self.group_size:
                raise Conflict(
                    f"the logistics group of building {self.id} already has {self.group_size} volunteers",
                    code="logistics-group-full",
                )
            if leader and self.logistics_leader is not None:
                raise Conflict(
                    f"the logistics group of building {self.id} already has a leader ({self.logistics_leader});"
                    " release that role first",
                    code="leader-exists",
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
            raise Conflict(f"volunteer {volunteer} is not {role} of building {self.id}", code="not-assigned")
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
