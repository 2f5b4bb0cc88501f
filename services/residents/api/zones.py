"""Zone status — sealed, controlled, precaution — and the answer to "when can we go out?"."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contracts import roles as r
from juwei.auth import CompoundId, LocalId, require
from juwei.callers import Caller
from juwei.problems import Problem
from services.residents import handlers
from services.residents.api.common import Command, global_id, local_id, runtime_of, today_of
from services.residents.domain import Zone, zone_for
from services.residents.views import buildings, zones

router = APIRouter(tags=["zones"])
StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Compound = Annotated[
    Caller,
    Depends(
        require(
            *r.STAFF,
            r.INFORMATION_OFFICER,
            r.LOGISTICS_VOLUNTEER,
            r.SAMPLING_VOLUNTEER,
            r.HOUSEHOLD,
            r.SUBDISTRICT_STAFF,
        )
    ),
]


class DecisionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"building": "12", "zone": "controlled", "reason": "街道通知 2022-04-20 第3号"}]
        },
    )
    building: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] | None = Field(
        None, description="A building, or none for the whole compound"
    )
    zone: Literal["sealed", "controlled", "precaution"]
    reason: str = Field(min_length=1, max_length=500, description="The authorities' decision, e.g. its notice")


def _answer(row: Any, today: date, scope_id: str) -> dict[str, Any]:
    """What residents ask: the zone, days since the last case and the earliest date of the next status."""
    last = row["last_case_on"] if row else None
    by_authority = bool(row["decided_by_authority"]) if row else False
    view = zone_for(last, max(today, last) if last else today, Zone.sealed_days, Zone.precaution_days)
    zone = row["zone"] if row and by_authority else view.zone
    return {
        "scope": "building" if ":" in scope_id else "compound",
        "building": local_id(scope_id) if ":" in scope_id else None,
        "zone": zone,
        "last_case_on": last.isoformat() if last else None,
        "days_since_last_case": view.days_since_last_case,
        "next_zone": None if by_authority else view.next_zone,
        "next_change_on": None if by_authority or view.next_change_on is None else view.next_change_on.isoformat(),
        "decided_by_authority": by_authority,
        "reason": row["reason"] if row else "no case recorded",
    }


@router.get("/compounds/{compound}/zones", summary="The compound's zone and every building's")
def compound_zones(compound: CompoundId, request: Request, caller: Compound) -> dict[str, Any]:
    caller.require_scope(compound)
    today = today_of(request)
    with runtime_of(request).database.reading() as session:
        rows = {
            row["scope_id"]: row
            for row in session.execute(select(zones).where(zones.c.compound == compound)).mappings()
        }
        every = (
            session.execute(
                select(buildings.c.building).where(buildings.c.compound == compound).order_by(buildings.c.number)
            )
            .scalars()
            .all()
        )
    return {
        "today": today.isoformat(),
        "compound": _answer(rows.get(compound), today, compound),
        "buildings": [_answer(rows.get(b), today, b) for b in every],
    }


@router.get("/compounds/{compound}/buildings/{building}/zone", summary="When can we go out? (one building)")
def building_zone(compound: CompoundId, building: LocalId, request: Request, caller: Compound) -> dict[str, Any]:
    caller.require_scope(compound)
    scope_id = global_id(compound, building)
    today = today_of(request)
    with runtime_of(request).database.reading() as session:
        known = session.execute(select(buildings.c.building).where(buildings.c.building == scope_id)).first()
        if known is None:
            raise Problem(404, f"building {building} is not registered", "building-unknown")
        row = session.execute(select(zones).where(zones.c.scope_id == scope_id)).mappings().first()
    return {"today": today.isoformat(), **_answer(row, today, scope_id)}


@router.post(
    "/compounds/{compound}/zones/decisions", status_code=201, summary="Set a zone by the authorities' decision"
)
def decide(compound: CompoundId, body: DecisionIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound, body.building)
    command = Command(request, caller, compound)
    with command.unit():
        assert command.session is not None
        if body.building is not None:
            scope_id = global_id(compound, body.building)
            known = command.session.execute(
                select(buildings.c.building).where(buildings.c.building == scope_id)
            ).first()
            if known is None:
                raise Problem(404, f"building {body.building} is not registered", "building-unknown")
        command.load(Zone, body.building).decide(body.zone, body.reason, today=command.today)
    if body.building is not None:  # the compound follows its buildings unless it was decided itself
        with command.runtime.database.unit_of_work() as session:
            handlers.reconcile_compound(command.runtime, session, compound, command.today)
    return {"building": body.building, "zone": body.zone, "decided_by_authority": True}
