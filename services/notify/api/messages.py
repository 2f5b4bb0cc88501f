"""Routes of announcements, the messages sent to building groups, and each message's delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from contracts.access import CompoundPeople, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from juwei.paging import Limit
from services.notify.application import messages
from services.notify.models import AnnouncementIn, Composed, DeliveryList, MessageList, MessageShown, Requeued

router = APIRouter(tags=["messages"])


@router.post(
    "/compounds/{compound}/announcements",
    status_code=201,
    response_model=Composed,
    summary="Broadcast a policy or notice to chosen buildings or the whole compound",
)
def announce(compound: CompoundId, body: AnnouncementIn, caller: Staff, unit: Unit) -> Composed:
    return messages.announce(unit, caller, body)


@router.get(
    "/compounds/{compound}/messages",
    response_model=MessageList,
    summary="Messages sent to the compound's groups, newest first",
)
def list_messages(
    compound: CompoundId,
    caller: CompoundPeople,
    runtime: RuntimeOf,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    return messages.list_messages(runtime, caller, compound, building, limit)


@router.get(
    "/compounds/{compound}/messages/{message}",
    response_model=MessageShown,
    response_model_exclude_unset=True,
    summary="One message and its delivery log (every attempt)",
)
def get_message(compound: CompoundId, message: LocalId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return messages.get_message(runtime, compound, message)


@router.get(
    "/compounds/{compound}/deliveries",
    response_model=DeliveryList,
    summary="Deliveries by status: dead letters and uncertain ones are what an operator must look at",
)
def list_deliveries(
    compound: CompoundId,
    caller: Staff,
    runtime: RuntimeOf,
    status: Annotated[str, Query(pattern=r"^[a-z,]+$")] = "dead,uncertain",
    limit: Limit = 100,
) -> dict[str, Any]:
    return messages.list_deliveries(runtime, compound, status, limit)


@router.post(
    "/compounds/{compound}/deliveries/{delivery}/requeue",
    response_model=Requeued,
    summary="Send a dead-lettered or uncertain delivery again (after fixing the channel)",
)
def requeue(
    compound: CompoundId,
    delivery: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    caller: Staff,
    runtime: RuntimeOf,
) -> Requeued:
    return messages.requeue(runtime, caller, compound, delivery)
