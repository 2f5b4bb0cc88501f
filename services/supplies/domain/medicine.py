"""Medicine for the elderly: a resident's medicine requests and the custody chain of their medical-insurance
card (one custodian at every step, overdue when out too long). Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from contracts.supplies import (
    CardCollected,
    CardHandedOver,
    CardHolder,
    CardOverdue,
    MedicineAndCardReturned,
    MedicinePurchased,
    MedicineRequested,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound, NotPermitted

# --- medicine for the elderly: the card's custody chain ------------------------------------------------


def holder(kind: str, id: str) -> CardHolder:
    return CardHolder(kind=kind, id=id)  # type: ignore[arg-type]


def describe(who: CardHolder | dict) -> str:
    kind, id = (who.kind, who.id) if isinstance(who, CardHolder) else (who["kind"], who["id"])
    return f"{kind.replace('subdistrict', 'subdistrict staff')} {id}"


class MedicineCard(Aggregate):
    """A resident's medical-insurance card (id: the resident) and the medicine requests it is taken out for.

    Exactly one holder at any time (``holder``: the household until the logistics leader collects it);
    only the holder can hand it on; the medicine is bought with the card, so only by whoever holds it.
    """

    stream_prefix = "card"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"no medicine was requested for resident {id.partition(':')[2]}", code="card-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.household: str | None = None
        self.building: str | None = None
        self.requests: dict[str, str] = {}  # request -> "open" | "purchased"
        self.holder: dict | None = None  # {"kind", "id"}
        self.out_since: str | None = None
        self.overdue_alerted = False

    @property
    def at_home(self) -> bool:
        return self.holder is None or self.holder["kind"] == "household"

    def _home(self) -> CardHolder:
        assert self.household is not None
        return holder("household", self.household)

    def _require_known(self) -> tuple[str, str]:
        if self.household is None or self.building is None:
            raise NotFound(f"no medicine was requested for resident {self.id}", code="card-unknown")
        return self.household, self.building

    def _require_holder(self, giver: CardHolder) -> None:
        current = self.holder or self._home().model_dump()
        if (giver.kind, giver.id) != (current["kind"], current["id"]):
            raise Conflict(
                f"the card of resident {self.id} is held by {describe(current)}, not by {describe(giver)}:"
                " only the card's custodian can hand it over",
                code="not-the-custodian",
            )

    def request_medicine(
        self,
        request: str,
        *,
        household: str,
        building: str,
        requested_on: date,
        by: str | None,
        prescription: str | None,
    ) -> None:
        if request in self.requests:
            raise Conflict(f"medicine request {request} is already recorded", code="request-exists")
        if self.household is not None and household != self.household:
            raise Conflict(
                f"the card of resident {self.id} belongs to household {self.household}; settle it before the move",
                code="card-elsewhere",
            )
        self.record(
            MedicineRequested(
                request=request,
                card=self.id,
                resident=self.id,
                household=household,
                building=building,
                requested_on=requested_on,
                by=by,
                prescription=prescription,
            )
        )

    @property
    def open_requests(self) -> list[str]:
        return [r for r, status in self.requests.items() if status == "open"]

    def collect(self, leader: str, *, building_leader: str | None, at: datetime) -> None:
        """The building's logistics leader takes the card from the household."""
        _household, building = self._require_known()
        if not self.at_home:
            raise Conflict(
                f"the card of resident {self.id} is already out, with {describe(self.holder or {})}", code="card-out"
            )
        if not self.open_requests:
            raise Conflict(
                f"resident {self.id} has no open medicine request: the card stays home", code="nothing-to-buy"
            )
        if building_leader is None:
            raise Conflict(f"building {building} has no logistics leader to collect cards", code="no-leader")
        if leader != building_leader:
            raise NotPermitted(
                f"cards are collected by the logistics leader of building {building} ({building_leader}), not {leader}",
                code="not-the-leader",
            )
        self.record(
            CardCollected(
                card=self.id,
                resident=self.id,
                building=building,
                giver=self._home(),
                receiver=holder("volunteer", leader),
                requests=self.open_requests,
                at=at,
            )
        )

    def hand_over(
        self,
        giver: CardHolder,
        receiver: CardHolder,
        *,
        handover: str,
        cards_in_handover: int,
        logistics: Collection[str],
        at: datetime,
    ) -> None:
        """From its holder to the next on the way (leader ↔ subdistrict); ``logistics``: the building's group."""
        _household, building = self._require_known()
        if giver.kind == "household":
            raise Invalid(
                "a card leaves its household only when the logistics leader collects it", code="collect-first"
            )
        if receiver.kind == "household":
            raise Invalid("a card goes back to its household with the medicine: record the return", code="use-return")
        if (giver.kind, giver.id) == (receiver.kind, receiver.id):
            raise Invalid(f"{describe(giver)} cannot hand a card to themselves", code="same-holder")
        self._require_holder(giver)
        if receiver.kind == "volunteer" and receiver.id not in logistics:
            raise Invalid(
                f"volunteer {receiver.id} is not in the logistics group of building {building}", code="not-in-group"
            )
        self.record(
            CardHandedOver(
                card=self.id,
                resident=self.id,
                building=building,
                handover=handover,
                giver=giver,
                receiver=receiver,
                cards_in_handover=cards_in_handover,
                at=at,
            )
        )

    def purchase(self, request: str, by: CardHolder, *, at: datetime) -> None:
        """The medicine of ``request`` was bought, with the card, by whoever holds it."""
        _household, building = self._require_known()
        status = self.requests.get(request)
        if status is None:
            raise NotFound(f"resident {self.id} has no medicine request {request}", code="request-unknown")
        if status != "open":
            raise Conflict(f"the medicine of request {request} was already bought", code="already-purchased")
        current = self.holder or self._home().model_dump()
        if self.at_home or (by.kind, by.id) != (current["kind"], current["id"]):
            raise Conflict(
                f"medicine is bought with the card, which is with {describe(current)}, not {describe(by)}",
                code="card-not-with-buyer",
            )
        self.record(MedicinePurchased(request=request, card=self.id, resident=self.id, building=building, by=by, at=at))

    def return_home(self, giver: CardHolder, *, at: datetime) -> None:
        """Medicine and card back to the household; requests not bought stay open for the next run."""
        _household, building = self._require_known()
        if self.at_home:
            raise Conflict(f"the card of resident {self.id} is at home already", code="card-at-home")
        self._require_holder(giver)
        self.record(
            MedicineAndCardReturned(
                card=self.id,
                resident=self.id,
                building=building,
                giver=giver,
                receiver=self._home(),
                fulfilled=[r for r, s in self.requests.items() if s == "purchased"],
                still_open=self.open_requests,
                at=at,
            )
        )

    def check_overdue(self, now: datetime, limit_hours: int) -> bool:
        """Raise the alert (once per trip) when the card has been out longer than ``limit_hours``."""
        if self.at_home or self.out_since is None or self.overdue_alerted:
            return False
        out_since = datetime.fromisoformat(self.out_since)
        hours = (now - out_since).total_seconds() / 3600
        if hours <= limit_hours:
            return False
        assert self.building is not None and self.holder is not None
        self.record(
            CardOverdue(
                card=self.id,
                resident=self.id,
                building=self.building,
                holder=CardHolder(**self.holder),
                out_since=out_since,
                hours_out=int(hours),
                limit_hours=limit_hours,
            )
        )
        return True

    def on_MedicineRequested(self, event: MedicineRequested) -> None:
        self.household = event.household
        self.building = event.building
        self.requests[event.request] = "open"
        if self.holder is None:
            self.holder = self._home().model_dump()

    def on_CardCollected(self, event: CardCollected) -> None:
        self.holder = event.receiver.model_dump()
        self.out_since = event.at.isoformat()
        self.overdue_alerted = False

    def on_CardHandedOver(self, event: CardHandedOver) -> None:
        self.holder = event.receiver.model_dump()

    def on_MedicinePurchased(self, event: MedicinePurchased) -> None:
        self.requests[event.request] = "purchased"

    def on_MedicineAndCardReturned(self, event: MedicineAndCardReturned) -> None:
        self.holder = event.receiver.model_dump()
        self.out_since = None
        self.overdue_alerted = False
        for request in event.fulfilled:
            self.requests[request] = "fulfilled"

    def on_CardOverdue(self, event: CardOverdue) -> None:
        self.overdue_alerted = True
