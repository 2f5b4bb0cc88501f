"""Sampling points (opened, changed, closed) and the assignment of buildings to them. Plain Python, no I/O."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from contracts.testing import (
    BuildingsAssigned,
    SamplingPointChanged,
    SamplingPointClosed,
    SamplingPointOpened,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound
from services.testing.domain.planner import natural_key

# --- who may staff a point -------------------------------------------------------------------------------


def check_point_volunteers(
    volunteers: Iterable[str], *, enlisted: Mapping[str, tuple[str, bool]], served: Collection[str]
) -> None:
    """Refuse a volunteer the residents service has not enlisted, one stood down, or (once the point serves
    buildings) one enlisted in none of them. ``enlisted``: volunteer → (their building, still serving)."""
    for volunteer in volunteers:
        name = volunteer.partition(":")[2] or volunteer
        found = enlisted.get(volunteer)
        if found is None:
            raise NotFound(
                f"志愿者 {name} 未在本小区登记，不能派到采样点 (volunteer {name} is not enlisted)",
                code="volunteer-unknown",
            )
        building, serving = found
        if not serving:
            raise Conflict(
                f"志愿者 {name} 已退出服务，不能派到采样点 (volunteer {name} was stood down)",
                code="volunteer-not-serving",
            )
        if served and building not in served:
            numbers = "、".join(b.partition(":")[2] or b for b in sorted(served, key=natural_key))
            raise Conflict(
                f"志愿者 {name} 登记在 {building.partition(':')[2] or building} 号楼，不在此采样点服务的楼栋"
                f"（{numbers}）(volunteer {name} is not registered for the buildings this point serves)",
                code="volunteer-outside-point",
            )


# --- aggregates ----------------------------------------------------------------------------------------------


class SamplingPoint(Aggregate):
    stream_prefix = "point"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"sampling point {id} is not open", code="point-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.location = ""
        self.throughput = 0.0
        self.volunteers: list[str] = []
        self.closed = False

    @staticmethod
    def _check(name: str, location: str, throughput: float) -> None:
        if not name.strip():
            raise Invalid("a sampling point needs a name", code="invalid-point")
        if not location.strip():
            raise Invalid("a sampling point needs a location", code="invalid-point")
        if not 0 < throughput <= 100:
            raise Invalid(
                f"throughput must be above 0 and at most 100 swabs a minute, not {throughput}", code="invalid-point"
            )

    def open(self, name: str, location: str, throughput: float, volunteers: Iterable[str] = ()) -> None:
        if self.exists:
            raise Conflict(f"sampling point {self.id} is already open", code="point-exists")
        self._check(name, location, throughput)
        self.record(
            SamplingPointOpened(
                point=self.id,
                name=name.strip(),
                location=location.strip(),
                throughput=throughput,
                volunteers=list(dict.fromkeys(volunteers)),
            )
        )

    def change(
        self,
        *,
        name: str | None = None,
        location: str | None = None,
        throughput: float | None = None,
        volunteers: Iterable[str] | None = None,
    ) -> None:
        self._require_open()
        new_name = self.name if name is None else name.strip()
        new_location = self.location if location is None else location.strip()
        new_throughput = self.throughput if throughput is None else throughput
        new_volunteers = self.volunteers if volunteers is None else list(dict.fromkeys(volunteers))
        self._check(new_name, new_location, new_throughput)
        if (new_name, new_location, new_throughput, new_volunteers) == (
            self.name,
            self.location,
            self.throughput,
            self.volunteers,
        ):
            return
        self.record(
            SamplingPointChanged(
                point=self.id,
                name=new_name,
                location=new_location,
                throughput=new_throughput,
                volunteers=new_volunteers,
            )
        )

    def close(self, reason: str = "") -> None:
        self._require_open()
        self.record(SamplingPointClosed(point=self.id, reason=reason.strip()))

    def _require_open(self) -> None:
        if not self.exists:
            raise self.unknown(self.id)
        if self.closed:
            raise Conflict(f"sampling point {self.id} is closed", code="point-closed")

    def on_SamplingPointOpened(self, event: SamplingPointOpened) -> None:
        self.name, self.location, self.throughput = event.name, event.location, event.throughput
        self.volunteers = list(event.volunteers)

    def on_SamplingPointChanged(self, event: SamplingPointChanged) -> None:
        self.on_SamplingPointOpened(event)  # type: ignore[arg-type]

    def on_SamplingPointClosed(self, _event: SamplingPointClosed) -> None:
        self.closed = True


class PointAssignment(Aggregate):
    """Which point serves each building of a compound (the aggregate's id is the compound)."""

    stream_prefix = "assignment"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.served_by: dict[str, str] = {}

    def buildings_of(self, point: str) -> list[str]:
        return sorted((b for b, p in self.served_by.items() if p == point), key=natural_key)

    def assign(
        self,
        point: str,
        buildings: Iterable[str],
        *,
        open_points: Collection[str],
        known_buildings: Collection[str],
        proposed: bool = False,
    ) -> None:
        """Move ``buildings`` to ``point``; the points they leave record their shorter lists."""
        self.reassign(
            {point: list(buildings)}, open_points=open_points, known_buildings=known_buildings, proposed=proposed
        )

    def reassign(
        self,
        chosen: Mapping[str, Iterable[str]],
        *,
        open_points: Collection[str],
        known_buildings: Collection[str],
        proposed: bool = False,
    ) -> None:
        closed = [p for p in chosen if p not in open_points]
        if closed:
            raise NotFound(f"sampling points {', '.join(closed)} are not open", code="point-unknown")
        wanted = {point: list(dict.fromkeys(buildings)) for point, buildings in chosen.items()}
        unknown = sorted({b for bs in wanted.values() for b in bs if b not in known_buildings}, key=natural_key)
        if unknown:
            raise NotFound(f"unknown buildings: {', '.join(unknown)}", code="building-unknown")
        twice = sorted({b for p, bs in wanted.items() for b in bs if any(b in o for q, o in wanted.items() if q != p)})
        if twice:
            raise Invalid(f"buildings {', '.join(twice)} are given to two points", code="building-twice")
        after = dict(self.served_by)
        for point, buildings in wanted.items():
            for building in buildings:
                after[building] = point
        touched = set(wanted) | {self.served_by[b] for bs in wanted.values() for b in bs if b in self.served_by}
        before = {point: self.buildings_of(point) for point in touched}  # recording changes the state
        for point in sorted(touched, key=natural_key):
            after_list = sorted((b for b, p in after.items() if p == point), key=natural_key)
            if before[point] != after_list:
                self.record(BuildingsAssigned(point=point, buildings=after_list, proposed=proposed))

    def on_BuildingsAssigned(self, event: BuildingsAssigned) -> None:
        for building in [b for b, p in self.served_by.items() if p == event.point]:
            del self.served_by[building]
        for building in event.buildings:
            self.served_by[building] = event.point
