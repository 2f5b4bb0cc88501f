"""Samples and results: a tube (pooled or individual PCR) from its samples to its result, and a household's
antigen self-reports in a round. Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from contracts.testing import (
    AntigenReported,
    IndividualResultRecorded,
    PcrRequested,
    ResidentsRecalled,
    RetestRequested,
    SampleCollected,
    TubeResulted,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound
from services.testing.domain.planner import natural_key
from services.testing.domain.progress import sample_kind

RESULTS = ("negative", "positive", "invalid")


PLATE_WELLS = 96  # a lab reports by plate: a 96-well plate holds at most 96 tubes
MAX_UPLOAD_TUBES = 100  # tubes a sampling point uploads at once (a cool box of racks)


@dataclass
class Swab:
    household: str
    building: str


@dataclass(frozen=True)
class Confirmation:
    """What a positive individual result asks the caller to open a case for."""

    resident: str
    household: str
    building: str


class Tube(Aggregate):
    """A PCR tube: a pool of up to ``pool_size`` samples, or one resident's individual re-test."""

    stream_prefix = "tube"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.round: str | None = None
        self.kind: str | None = None
        self.samples: dict[str, Swab] = {}
        self.result: str | None = None

    def collect(
        self,
        round: str,
        resident: str,
        household: str,
        building: str,
        *,
        status: str | None,
        round_kind: str,
        pool_size: int,
        attempt: int,
        at: datetime,
        point: str | None = None,
        door_to_door: bool = False,
    ) -> str:
        """Put one resident's swab in this tube; ``status`` is their status in the round so far."""
        kind = sample_kind(status, round_kind)
        if self.result is not None:
            raise Conflict(f"tube {self.id} already has its result", code="tube-resulted")
        if self.round is not None and self.round != round:
            raise Conflict(f"tube {self.id} belongs to another round", code="tube-other-round")
        if self.kind is not None and self.kind != kind:
            raise Conflict(
                f"tube {self.id} holds {self.kind} samples; this resident needs a {kind} one", code="tube-kind-mismatch"
            )
        if resident in self.samples:
            raise Conflict(f"resident {resident} is already in tube {self.id}", code="already-in-tube")
        capacity = pool_size if kind == "pooled" else 1
        if len(self.samples) >= capacity:
            raise Conflict(f"tube {self.id} is full ({capacity} samples)", code="tube-full")
        self.record(
            SampleCollected(
                round=round,
                tube=self.id,
                point=point,
                resident=resident,
                household=household,
                building=building,
                kind=kind,  # type: ignore[arg-type]
                attempt=attempt,
                door_to_door=door_to_door,
                collected_at=at,
            )
        )
        return kind

    def record_result(self, result: str, *, at: datetime) -> Confirmation | None:
        """The lab's result; returns the resident to open a case for when an individual test is positive."""
        if not self.exists:
            raise NotFound(f"tube {self.id} holds no sample", code="tube-unknown")
        if result not in RESULTS:
            raise Invalid(f"a result is negative, positive or invalid, not {result!r}", code="invalid-result")
        if self.result is not None:
            raise Conflict(f"tube {self.id} already has its result ({self.result})", code="tube-resulted")
        assert self.round is not None
        if self.kind == "individual":
            resident, swab = next(iter(self.samples.items()))
            self.record(
                IndividualResultRecorded(
                    round=self.round,
                    tube=self.id,
                    resident=resident,
                    household=swab.household,
                    building=swab.building,
                    result=result,  # type: ignore[arg-type]
                    resulted_at=at,
                )
            )
            if result == "invalid":
                self._follow_up(ResidentsRecalled, reason="invalid individual sample")
            return Confirmation(resident, swab.household, swab.building) if result == "positive" else None
        self.record(
            TubeResulted(
                round=self.round,
                tube=self.id,
                result=result,  # type: ignore[arg-type]
                residents=list(self.samples),
                resulted_at=at,
            )
        )
        if result == "positive":
            self._follow_up(RetestRequested)
        elif result == "invalid":
            self._follow_up(ResidentsRecalled, reason="invalid pooled sample")
        return None

    def already_resulted(self, result: str) -> bool:
        """The lab sent this tube's result again (a re-posted plate): nothing to record, nothing refused."""
        return self.result is not None and self.result == result

    def already_holds(self, round: str, residents: Iterable[str]) -> bool:
        """This tube holds exactly these residents' samples of this round (a re-sent upload)."""
        return self.exists and self.round == round and set(self.samples) == set(residents)

    def _follow_up(self, kind: type[RetestRequested] | type[ResidentsRecalled], **extra: str) -> None:
        """One event per building, so that notify tells each building only about its own residents."""
        by_building: dict[str, list[tuple[str, Swab]]] = {}
        for resident, swab in self.samples.items():
            by_building.setdefault(swab.building, []).append((resident, swab))
        assert self.round is not None
        for building in sorted(by_building, key=natural_key):
            people = by_building[building]
            self.record(
                kind(
                    round=self.round,
                    tube=self.id,
                    building=building,
                    residents=[r for r, _ in people],
                    households=list(dict.fromkeys(s.household for _, s in people)),
                    **extra,
                )
            )

    def on_SampleCollected(self, event: SampleCollected) -> None:
        self.round = event.round
        self.kind = event.kind
        self.samples[event.resident] = Swab(event.household, event.building)

    def on_TubeResulted(self, event: TubeResulted) -> None:
        self.result = event.result

    def on_IndividualResultRecorded(self, event: IndividualResultRecorded) -> None:
        self.result = event.result


class SelfReports(Aggregate):
    """A household's antigen self-test results on one antigen day (id ``<round>/<household>``)."""

    stream_prefix = "antigen"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.results: dict[str, str] = {}

    @staticmethod
    def id_of(round: str, household: str) -> str:
        return f"{round}/{household}"

    def report(
        self,
        round: str,
        household: str,
        building: str,
        resident: str,
        result: str,
        *,
        round_kind: str,
        members: Collection[str],
        at: datetime,
        photo: str | None = None,
    ) -> None:
        if round_kind != "antigen":
            raise Conflict("antigen self-reports belong to an antigen day, not a PCR round", code="not-antigen-round")
        if result not in RESULTS:
            raise Invalid(f"a result is negative, positive or invalid, not {result!r}", code="invalid-result")
        if resident not in members:
            raise Invalid(f"resident {resident} does not live in household {household}", code="not-a-member")
        earlier = self.results.get(resident)
        if earlier is not None and earlier != "invalid":
            raise Conflict(f"resident {resident} has already reported ({earlier}) today", code="already-reported")
        self.record(
            AntigenReported(
                round=round,
                resident=resident,
                household=household,
                building=building,
                result=result,  # type: ignore[arg-type]
                photo=photo,
                reported_at=at,
            )
        )
        if result == "positive":
            self.record(
                PcrRequested(
                    round=round,
                    resident=resident,
                    household=household,
                    building=building,
                    reason="positive antigen self-test",
                )
            )

    def on_AntigenReported(self, event: AntigenReported) -> None:
        self.results[event.resident] = event.result
