"""Medicine for the elderly: needs recorded by the information officer, and the card's custody chain.

Every step names who gives the card and who takes it; only the card's holder can hand it on (the whole
handover is refused, nothing recorded, if one card is not theirs). What a resident takes is sealed
under the resident's own key and shown only to the committee, the building's officer and the buyers.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from contracts import roles as r
from contracts.ids import global_id, local_id
from contracts.supplies import CardHolder
from juwei.aggregate import Conflict, Invalid, NotFound
from juwei.audit import Reading, SensitiveRead, record_reads
from juwei.callers import Caller, Forbidden
from juwei.events import utcnow
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.supplies.application.register import (
    building_known,
    information_officer,
    logistics_group,
    logistics_leader,
    resident_row,
    visible_buildings,
)
from services.supplies.domain import MedicineCard
from services.supplies.models import CollectionIn, HandoverIn, HolderIn, MedicineRequestIn, PurchaseIn, ReturnIn
from services.supplies.views import card_history, cards, medicine_requests


def to_holder(compound: str, who: HolderIn) -> CardHolder:
    """Subdistrict staff serve many compounds: their ids are their own, the others' are the compound's."""
    ident = who.id if who.kind == "subdistrict" else global_id(compound, who.id)
    return CardHolder(kind=who.kind, id=ident)


def shown_holder(kind: str | None, ident: str | None) -> dict[str, str] | None:
    if kind is None or ident is None:
        return None
    return {"kind": kind, "id": ident if kind == "subdistrict" else local_id(ident)}


def _require_card_scope(caller: Caller, compound: str, building: str) -> None:
    caller.require_scope(compound, local_id(building))


def request_medicine(unit: UnitOfWork, caller: Caller, body: MedicineRequestIn) -> dict[str, Any]:
    """Record a medication need (the prescription sealed under the resident's own key)."""
    compound = unit.compound
    with unit:
        session = unit.session
        resident = resident_row(session, compound, body.resident)
        _require_card_scope(caller, compound, resident["building"])
        officer = global_id(compound, body.officer) if body.officer else None
        if caller.role == r.INFORMATION_OFFICER:
            if officer is None:
                raise Invalid("body.officer: an information officer says who they are", code="validation")
            if officer != information_officer(session, resident["building"]):
                raise Forbidden(
                    f"{body.officer} is not the information officer of building {local_id(resident['building'])}",
                    code="not-the-officer",
                )
        request_id = global_id(compound, body.request)
        taken = session.execute(
            select(medicine_requests.c.request).where(medicine_requests.c.request == request_id)
        ).first()
        if taken is not None:
            raise Conflict(f"medicine request {body.request} is already recorded", code="request-exists")
        sealed = unit.runtime.vault.seal(
            session,
            resident["resident"],
            {"medicine": body.medicine, "quantity": body.quantity, "hospital": body.hospital},
        )
        card = unit.load_or_new(MedicineCard, resident["resident"])
        card.request_medicine(
            request_id,
            household=resident["household"],
            building=resident["building"],
            requested_on=unit.today,
            by=officer,
            prescription=sealed,
        )
    return {
        "request": body.request,
        "resident": body.resident,
        "household": local_id(resident["household"]),
        "building": local_id(resident["building"]),
    }


def building_needs(
    runtime: Runtime, caller: Caller, compound: str, building: str, status: str | None, reading: Reading
) -> dict[str, Any]:
    """Medication needs of a building; prescriptions are health data: each one shown is audited in the
    transaction that reads it."""
    caller.require_scope(compound, building)
    with runtime.database.unit_of_work() as session:
        building_id = building_known(session, compound, building)
        query = select(medicine_requests).where(medicine_requests.c.building == building_id)
        if status is not None:
            query = query.where(medicine_requests.c.status == status)
        rows = session.execute(query.order_by(medicine_requests.c.requested_on, medicine_requests.c.request)).mappings()
        found = [
            {
                "request": local_id(row["request"]),
                "resident": local_id(row["card"]),
                "household": local_id(row["household"]),
                "requested_on": row["requested_on"].isoformat(),
                "status": row["status"],
                # None once the resident was erased: their key is gone.
                "prescription": runtime.vault.unseal(session, row["card"], row["prescription"]),
            }
            for row in rows
        ]
        shown = {(request_["resident"], request_["household"]) for request_ in found if request_["prescription"]}
        reads = [
            SensitiveRead(global_id(compound, resident), "health", ("prescription",), building_id)
            for resident, _household in sorted(shown)
        ]
        record_reads(session, reading, caller, compound, reads)
    return {"building": building, "requests": found}


def outstanding(runtime: Runtime, caller: Caller, compound: str, building: str | None) -> dict[str, Any]:
    """What is outstanding, building by building: open requests, medicine bought, cards out and overdue."""
    shown = visible_buildings(caller, building)
    per: dict[str, dict[str, int]] = {}

    def entry(building_id: str) -> dict[str, int]:
        return per.setdefault(
            local_id(building_id), {"open_requests": 0, "bought_not_home": 0, "cards_out": 0, "cards_overdue": 0}
        )

    with runtime.database.reading() as session:
        for building_id, status, count in session.execute(
            select(medicine_requests.c.building, medicine_requests.c.status, func.count())
            .where(medicine_requests.c.compound == compound, medicine_requests.c.status != "fulfilled")
            .group_by(medicine_requests.c.building, medicine_requests.c.status)
        ):
            entry(building_id)["open_requests" if status == "open" else "bought_not_home"] += count
        for building_id, overdue, count in session.execute(
            select(cards.c.building, cards.c.overdue, func.count())
            .where(cards.c.compound == compound, cards.c.holder_kind != "household")
            .group_by(cards.c.building, cards.c.overdue)
        ):
            entry(building_id)["cards_out"] += count
            if overdue:
                entry(building_id)["cards_overdue"] += count
    found = [
        {"building": b, **counts}
        for b, counts in sorted(per.items(), key=lambda item: (len(item[0]), item[0]))
        if shown is None or b in shown
    ]
    return {"buildings": found}


def collect_card(unit: UnitOfWork, caller: Caller, resident: str, body: CollectionIn) -> dict[str, Any]:
    """The building's logistics leader collects a card from the household."""
    compound = unit.compound
    with unit:
        card = unit.load(MedicineCard, global_id(compound, resident))
        assert card.building is not None
        _require_card_scope(caller, compound, card.building)
        card.collect(
            global_id(compound, body.leader),
            building_leader=logistics_leader(unit.session, card.building),
            at=utcnow(),
        )
    return {"card": resident, "holder": {"kind": "volunteer", "id": body.leader}}


def hand_over(unit: UnitOfWork, caller: Caller, body: HandoverIn) -> dict[str, Any]:
    """Cards change hands, one or many: all of them, or none if one is not the giver's."""
    compound = unit.compound
    if len(set(body.cards)) != len(body.cards):
        raise Invalid("each card appears once in a handover", code="card-twice")
    sides = {body.giver.kind, body.receiver.kind}
    if caller.role == r.SUBDISTRICT_STAFF and "subdistrict" not in sides:
        raise Forbidden("subdistrict staff record handovers to or from subdistrict staff")
    if caller.role == r.LOGISTICS_VOLUNTEER and "volunteer" not in sides:
        raise Forbidden("a logistics volunteer records handovers to or from a volunteer")
    giver, receiver = to_holder(compound, body.giver), to_holder(compound, body.receiver)
    handover = global_id(compound, body.handover)
    at = utcnow()
    with unit:
        session = unit.session
        used = session.execute(select(card_history.c.seq).where(card_history.c.handover == handover).limit(1)).first()
        if used is not None:
            raise Conflict(f"handover {body.handover} is already recorded", code="handover-exists")
        groups: dict[str, set[str]] = {}
        for resident in body.cards:
            card = unit.load(MedicineCard, global_id(compound, resident))
            assert card.building is not None
            _require_card_scope(caller, compound, card.building)
            if card.building not in groups:
                groups[card.building] = set(logistics_group(session, card.building))
            card.hand_over(
                giver,
                receiver,
                handover=handover,
                cards_in_handover=len(body.cards),
                logistics=groups[card.building],
                at=at,
            )
    return {
        "handover": body.handover,
        "giver": body.giver.model_dump(),
        "receiver": body.receiver.model_dump(),
        "cards": body.cards,
    }


def purchase(unit: UnitOfWork, caller: Caller, medicine_request: str, body: PurchaseIn) -> dict[str, Any]:
    """The medicine was bought, by whoever holds the card."""
    compound = unit.compound
    request_id = global_id(compound, medicine_request)
    with unit:
        card_id = unit.session.execute(
            select(medicine_requests.c.card).where(medicine_requests.c.request == request_id)
        ).scalar()
        if card_id is None:
            raise NotFound(f"no medicine request {medicine_request}", code="request-unknown")
        card = unit.load(MedicineCard, card_id)
        _require_card_scope(caller, compound, card.building or "")
        card.purchase(request_id, to_holder(compound, body.buyer), at=utcnow())
    return {"request": medicine_request, "status": "purchased"}


def return_home(unit: UnitOfWork, caller: Caller, resident: str, body: ReturnIn) -> dict[str, Any]:
    """Medicine and card are back home."""
    compound = unit.compound
    with unit:
        card = unit.load(MedicineCard, global_id(compound, resident))
        assert card.building is not None
        _require_card_scope(caller, compound, card.building)
        card.return_home(to_holder(compound, body.giver), at=utcnow())
        returned = card.pending()[-1]
    return {
        "card": resident,
        "fulfilled": [local_id(x) for x in returned.fulfilled],  # type: ignore[attr-defined]
        "still_open": [local_id(x) for x in returned.still_open],  # type: ignore[attr-defined]
    }


def where_cards_are(runtime: Runtime, caller: Caller, compound: str, building: str | None, out: bool) -> dict[str, Any]:
    """Where each card is now (only those away from home, if ``out``)."""
    shown = visible_buildings(caller, building)
    query = select(cards).where(cards.c.compound == compound)
    if shown is not None:
        query = query.where(cards.c.building.in_([global_id(compound, b) for b in shown]))
    if out:
        query = query.where(cards.c.holder_kind != "household")
    with runtime.database.reading() as session:
        rows = session.execute(query.order_by(cards.c.building, cards.c.card)).mappings().all()
    return {
        "cards": [
            {
                "card": local_id(row["card"]),
                "household": local_id(row["household"]),
                "building": local_id(row["building"]),
                "holder": shown_holder(row["holder_kind"], row["holder"]),
                "since": row["since"].isoformat() if row["since"] else None,
                "out_since": row["out_since"].isoformat() if row["out_since"] else None,
                "overdue": row["overdue"],
            }
            for row in rows
        ]
    }


def card_steps(runtime: Runtime, caller: Caller, compound: str, resident: str) -> dict[str, Any]:
    """Every step of one card's way."""
    card_id = global_id(compound, resident)
    with runtime.database.reading() as session:
        row = session.execute(select(cards).where(cards.c.card == card_id)).mappings().first()
        if row is None:
            raise MedicineCard.unknown(card_id)
        _require_card_scope(caller, compound, row["building"])
        steps = session.execute(
            select(card_history).where(card_history.c.card == card_id).order_by(card_history.c.seq)
        ).mappings()
        history = [
            {
                "step": s["step"],
                "at": s["at"].isoformat(),
                "giver": shown_holder(s["giver_kind"], s["giver"]),
                "receiver": shown_holder(s["receiver_kind"], s["receiver"]),
                "handover": local_id(s["handover"]) if s["handover"] else None,
                "requests": [local_id(x) for x in json.loads(s["requests"])],
            }
            for s in steps
        ]
    return {
        "card": resident,
        "holder": shown_holder(row["holder_kind"], row["holder"]),
        "overdue": row["overdue"],
        "history": history,
    }
