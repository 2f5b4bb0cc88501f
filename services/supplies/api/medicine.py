"""Medicine for the elderly: needs recorded by the information officer, and the card's custody chain.

Every step names who gives the card and who takes it; only the card's holder can hand it on (the whole
handover is refused, nothing recorded, if one card is not theirs). What a resident takes is sealed
under the resident's own key and shown only to the committee, the building's officer and the buyers.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from contracts import roles as r
from contracts.supplies import CardHolder
from juwei.audit import SensitiveRead, reading_of, record_reads
from juwei.auth import CompoundId, LocalId
from juwei.callers import Caller
from juwei.events import utcnow
from juwei.problems import Problem
from services.supplies.api.common import (
    Buyers,
    CardCarriers,
    Command,
    CustodyReaders,
    LocalIdText,
    Logistics,
    MedicineReaders,
    Officers,
    building_known,
    global_id,
    information_officer,
    local_id,
    logistics_group,
    logistics_leader,
    resident_row,
    runtime_of,
    visible_buildings,
)
from services.supplies.domain import MedicineCard
from services.supplies.views import card_history, cards, medicine_requests

router = APIRouter(tags=["medicine"])


class MedicineRequestIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "request": "m-0412-07",
                    "resident": "r-120301",
                    "medicine": "硝苯地平控释片 30mg",
                    "quantity": "2 boxes",
                    "hospital": "瑞金医院",
                    "officer": "v-1200",
                }
            ]
        },
    )
    request: LocalIdText
    resident: LocalIdText
    medicine: str = Field(min_length=1, max_length=200)
    quantity: str = Field(min_length=1, max_length=50)
    hospital: str = Field(min_length=1, max_length=200)
    officer: LocalIdText | None = Field(None, description="the information officer; required of an officer's key")


class HolderIn(BaseModel):
    """Who holds or takes a card: ids are the compound's, except subdistrict staff's own."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["volunteer", "subdistrict", "staff", "household"]
    id: LocalIdText


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"leader": "v-1201"}]})
    leader: LocalIdText


class HandoverIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "handover": "h-0412-1",
                    "giver": {"kind": "volunteer", "id": "v-1201"},
                    "receiver": {"kind": "subdistrict", "id": "sd-wang"},
                    "cards": ["r-120301", "r-120502"],
                }
            ]
        },
    )
    handover: LocalIdText
    giver: HolderIn
    receiver: HolderIn
    cards: list[LocalIdText] = Field(min_length=1, max_length=500, description="the residents whose cards change hands")


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    buyer: HolderIn = Field(description="who bought it: they hold the card")


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    giver: HolderIn


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


@router.post("/compounds/{compound}/medicine-requests", status_code=201, summary="Record a medication need")
def request_medicine(
    compound: CompoundId, body: MedicineRequestIn, request: Request, caller: Officers
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        resident = resident_row(session, compound, body.resident)
        _require_card_scope(caller, compound, resident["building"])
        officer = global_id(compound, body.officer) if body.officer else None
        if caller.role == r.INFORMATION_OFFICER:
            if officer is None:
                raise Problem(422, "body.officer: an information officer says who they are", "validation")
            if officer != information_officer(session, resident["building"]):
                raise Problem(
                    403,
                    f"{body.officer} is not the information officer of building {local_id(resident['building'])}",
                    "not-the-officer",
                )
        request_id = global_id(compound, body.request)
        taken = session.execute(
            select(medicine_requests.c.request).where(medicine_requests.c.request == request_id)
        ).first()
        if taken is not None:
            raise Problem(409, f"medicine request {body.request} is already recorded", "request-exists")
        sealed = runtime_of(request).vault.seal(
            session,
            resident["resident"],
            {"medicine": body.medicine, "quantity": body.quantity, "hospital": body.hospital},
        )
        card = command.load(MedicineCard, resident["resident"])
        card.request_medicine(
            request_id,
            household=resident["household"],
            building=resident["building"],
            requested_on=command.today,
            by=officer,
            prescription=sealed,
        )
    return {
        "request": body.request,
        "resident": body.resident,
        "household": local_id(resident["household"]),
        "building": local_id(resident["building"]),
    }


@router.get("/compounds/{compound}/buildings/{building}/medicine-requests", summary="Medication needs of a building")
def building_needs(
    compound: CompoundId,
    building: LocalId,
    request: Request,
    caller: MedicineReaders,
    status: Annotated[Literal["open", "purchased", "fulfilled"] | None, Query()] = None,
) -> dict[str, Any]:
    caller.require_scope(compound, building)
    runtime = runtime_of(request)
    reading = reading_of(request, f"medicine runs: the needs of building {building}")
    # Prescriptions are health data: each one shown is audited in the transaction that reads it.
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


@router.get("/compounds/{compound}/medicine/outstanding", summary="What is outstanding, building by building")
def outstanding(
    compound: CompoundId,
    request: Request,
    caller: CustodyReaders,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    caller.require_scope(compound)
    shown = visible_buildings(caller, building)
    per: dict[str, dict[str, int]] = {}

    def entry(building_id: str) -> dict[str, int]:
        return per.setdefault(
            local_id(building_id), {"open_requests": 0, "bought_not_home": 0, "cards_out": 0, "cards_overdue": 0}
        )

    with runtime_of(request).database.reading() as session:
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


@router.post("/compounds/{compound}/cards/{resident}/collection", summary="The logistics leader collects a card")
def collect_card(
    compound: CompoundId, resident: LocalId, body: CollectionIn, request: Request, caller: Logistics
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        card = command.load(MedicineCard, global_id(compound, resident))
        if card.building is None:
            raise Problem(404, f"no medicine was requested for resident {resident}", "card-unknown")
        _require_card_scope(caller, compound, card.building)
        card.collect(
            global_id(compound, body.leader),
            building_leader=logistics_leader(command.session, card.building),
            at=utcnow(),
        )
    return {"card": resident, "holder": {"kind": "volunteer", "id": body.leader}}


@router.post("/compounds/{compound}/card-handovers", status_code=201, summary="Cards change hands (one or many)")
def hand_over(compound: CompoundId, body: HandoverIn, request: Request, caller: CardCarriers) -> dict[str, Any]:
    caller.require_scope(compound)
    if len(set(body.cards)) != len(body.cards):
        raise Problem(422, "each card appears once in a handover", "card-twice")
    sides = {body.giver.kind, body.receiver.kind}
    if caller.role == r.SUBDISTRICT_STAFF and "subdistrict" not in sides:
        raise Problem(403, "subdistrict staff record handovers to or from subdistrict staff", "forbidden")
    if caller.role == r.LOGISTICS_VOLUNTEER and "volunteer" not in sides:
        raise Problem(403, "a logistics volunteer records handovers to or from a volunteer", "forbidden")
    giver, receiver = to_holder(compound, body.giver), to_holder(compound, body.receiver)
    handover = global_id(compound, body.handover)
    at = utcnow()
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        used = session.execute(select(card_history.c.seq).where(card_history.c.handover == handover).limit(1)).first()
        if used is not None:
            raise Problem(409, f"handover {body.handover} is already recorded", "handover-exists")
        groups: dict[str, set[str]] = {}
        for resident in body.cards:
            card = command.load(MedicineCard, global_id(compound, resident))
            if card.building is None:
                raise Problem(404, f"no medicine was requested for resident {resident}", "card-unknown")
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


@router.post("/compounds/{compound}/medicine-requests/{medicine_request}/purchase", summary="The medicine was bought")
def purchase(
    compound: CompoundId, medicine_request: LocalId, body: PurchaseIn, request: Request, caller: Buyers
) -> dict[str, Any]:
    caller.require_scope(compound)
    request_id = global_id(compound, medicine_request)
    command = Command(request, caller, compound)
    with command.unit():
        card_id = command.session.execute(
            select(medicine_requests.c.card).where(medicine_requests.c.request == request_id)
        ).scalar()
        if card_id is None:
            raise Problem(404, f"no medicine request {medicine_request}", "request-unknown")
        card = command.load(MedicineCard, card_id)
        _require_card_scope(caller, compound, card.building or "")
        card.purchase(request_id, to_holder(compound, body.buyer), at=utcnow())
    return {"request": medicine_request, "status": "purchased"}


@router.post("/compounds/{compound}/cards/{resident}/return", summary="Medicine and card are back home")
def return_home(
    compound: CompoundId, resident: LocalId, body: ReturnIn, request: Request, caller: CardCarriers
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        card = command.load(MedicineCard, global_id(compound, resident))
        if card.building is None:
            raise Problem(404, f"no medicine was requested for resident {resident}", "card-unknown")
        _require_card_scope(caller, compound, card.building)
        card.return_home(to_holder(compound, body.giver), at=utcnow())
        returned = card.pending()[-1]
    return {
        "card": resident,
        "fulfilled": [local_id(x) for x in returned.fulfilled],  # type: ignore[attr-defined]
        "still_open": [local_id(x) for x in returned.still_open],  # type: ignore[attr-defined]
    }


@router.get("/compounds/{compound}/cards", summary="Where is each card now")
def where_cards_are(
    compound: CompoundId,
    request: Request,
    caller: CustodyReaders,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
    out: Annotated[bool, Query(description="only cards away from home")] = False,
) -> dict[str, Any]:
    caller.require_scope(compound)
    shown = visible_buildings(caller, building)
    query = select(cards).where(cards.c.compound == compound)
    if shown is not None:
        query = query.where(cards.c.building.in_([global_id(compound, b) for b in shown]))
    if out:
        query = query.where(cards.c.holder_kind != "household")
    with runtime_of(request).database.reading() as session:
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


@router.get("/compounds/{compound}/cards/{resident}/history", summary="Every step of one card's way")
def card_steps(compound: CompoundId, resident: LocalId, request: Request, caller: CustodyReaders) -> dict[str, Any]:
    caller.require_scope(compound)
    card_id = global_id(compound, resident)
    with runtime_of(request).database.reading() as session:
        row = session.execute(select(cards).where(cards.c.card == card_id)).mappings().first()
        if row is None:
            raise Problem(404, f"no medicine was requested for resident {resident}", "card-unknown")
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
