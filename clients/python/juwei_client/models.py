"""The answers an integrator reads most, as dataclasses: ids are compound-local (``"7"``, ``"h7-1502"``), as the
APIs show them. Fields an answer adds later are kept in ``extra`` instead of breaking an older client."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _build(cls: type[T], body: dict[str, Any], **nested: Any) -> T:
    """``cls`` from an answer's object: its known fields (``nested`` already built), the rest in ``extra``."""
    names = {f.name for f in fields(cls)} - {"extra"}  # type: ignore[arg-type]
    known = {k: v for k, v in body.items() if k in names}
    known.update(nested)
    return cls(**known, extra={k: v for k, v in body.items() if k not in names})


# --- residents ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Building:
    building: str
    number: str
    floors: int
    rooms_per_floor: int
    lifts: int
    lift_capacity: int
    households: int = 0
    residents: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Building:
        return _build(cls, body)


@dataclass(frozen=True)
class Resident:
    """A member as the register shows it to this key: ``name``, ``phone``, ``id_number`` only when revealed,
    the needs flags (``None``) when the key may not read health data."""

    resident: str
    household: str
    building: str
    floor: int
    room: int
    birth_year: int
    elderly: bool
    infant: bool
    representative: bool
    erased: bool
    masked: bool
    regular_medication: bool | None = None
    mobility_impaired: bool | None = None
    bedridden: bool | None = None
    pregnant: bool | None = None
    name: str | None = None
    phone: str | None = None
    id_number: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Resident:
        return _build(cls, body)


@dataclass(frozen=True)
class Household:
    household: str
    building: str
    floor: int
    room: int
    members: list[Resident]
    representative: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Household:
        return _build(cls, body, members=[Resident.of(m) for m in body.get("members", [])])


# --- testing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """A PCR round or an antigen day; its call rules (``mode``, ``floors_per_call`` …) are in ``extra``."""

    round: str
    kind: str
    on: str
    starts_at: str
    points: list[str]
    pool_size: int
    auto_advance: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Round:
        return _build(cls, body)


@dataclass(frozen=True)
class BuildingCount:
    building: str
    residents: int
    tested: int
    negative: int
    awaiting_result: int
    to_resample: int
    positive: int
    text: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> BuildingCount:
        return _build(cls, body)


@dataclass(frozen=True)
class RoundCounts:
    """Tested per building: what the groups are told ("Building 7: 198 of 200 tested")."""

    round: str
    residents: int
    tested: int
    buildings: list[BuildingCount]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> RoundCounts:
        return _build(cls, body, buildings=[BuildingCount.of(b) for b in body.get("buildings", [])])


@dataclass(frozen=True)
class Tube:
    tube: str
    round: str
    kind: str
    residents: list[str]
    point: str | None = None
    resulted_at: str | None = None
    result: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Tube:
        return _build(cls, body)


@dataclass(frozen=True)
class ResultRecorded:
    """A recorded result: an individual one names the ``resident``; a tube's the ``residents`` it holds.
    ``case``: the case a positive individual result opened."""

    tube: str
    result: str
    resident: str | None = None
    residents: list[str] = field(default_factory=list)
    kind: str | None = None
    case: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> ResultRecorded:
        return _build(cls, body)


# --- supplies -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A batch as listed; ``Batch.of`` of one batch's page also fills ``buildings``, ``for_households``."""

    batch: str
    source: str
    label: str
    arrived_on: str
    items: list[dict[str, Any]]
    method: str | None = None
    households: int | None = None
    dispatched_on: str | None = None
    buildings: list[str] = field(default_factory=list)
    for_households: list[str] = field(default_factory=list)
    donations: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Batch:
        return _build(cls, body)


@dataclass(frozen=True)
class BuildingDelivery:
    building: str
    shifts: list[str]
    households: int
    delivered: int
    follow_ups: int
    complete: bool
    text: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> BuildingDelivery:
        return _build(cls, body)


@dataclass(frozen=True)
class BatchProgress:
    """Per building: 180/200 delivered."""

    batch: str
    households: int
    delivered: int
    follow_ups: int
    buildings: list[BuildingDelivery]
    dispatched_on: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> BatchProgress:
        return _build(cls, body, buildings=[BuildingDelivery.of(b) for b in body.get("buildings", [])])


# --- notify ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionReceived:
    """A question passed on: the group of near-duplicates it joined, and answers already given to similar ones."""

    question: str
    building: str
    question_group: str
    faq: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> QuestionReceived:
        return _build(cls, body)


@dataclass(frozen=True)
class QuestionGroup:
    question_group: str
    text: str
    asked: int
    buildings: dict[str, int]
    examples: list[str] = field(default_factory=list)
    first_at: str | None = None
    last_at: str | None = None
    answer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> QuestionGroup:
        return _build(cls, body)


@dataclass(frozen=True)
class Answered:
    answer: str
    message: str
    buildings: list[str]
    questions: int
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Answered:
        return _build(cls, body)


@dataclass(frozen=True)
class FaqEntry:
    answer: str
    question: str
    text: str
    policy_points: list[str]
    asked: int
    buildings: int
    answered_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> FaqEntry:
        return _build(cls, body)


# --- every service ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Whoami:
    key_id: str
    role: str
    compound: str | None
    buildings: list[str] | None
    holder: dict[str, str] | None = None
    expires_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Whoami:
        return _build(cls, body)
