"""Routes of webhook subscriptions: outside systems register a URL for the events their key may read."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from contracts.access import Subscribers
from juwei.dependencies import RuntimeOf
from juwei.paging import MAX_POSITION
from services.notify.application import subscriptions
from services.notify.models import (
    Replayed,
    ReplayIn,
    SubscriptionDeliveries,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionRegistered,
)

router = APIRouter(tags=["subscriptions"])
SubscriptionId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Subscription id")]


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionRegistered,
    summary="Register a webhook for event types in compounds (the secret is shown this once)",
)
def register(body: SubscriptionIn, caller: Subscribers, runtime: RuntimeOf) -> SubscriptionRegistered:
    return subscriptions.register(runtime, caller, body)


@router.get("/subscriptions", response_model=list[SubscriptionOut], summary="The caller's webhook subscriptions")
def list_subscriptions(caller: Subscribers, runtime: RuntimeOf) -> list[SubscriptionOut]:
    return subscriptions.list_subscriptions(runtime, caller)


@router.get("/subscriptions/{subscription}", response_model=SubscriptionOut, summary="One webhook subscription")
def get_subscription(subscription: SubscriptionId, caller: Subscribers, runtime: RuntimeOf) -> SubscriptionOut:
    return subscriptions.get_subscription(runtime, caller, subscription)


@router.post(
    "/subscriptions/{subscription}/pause",
    response_model=SubscriptionOut,
    summary="Pause deliveries: events queue up and wait",
)
def pause(subscription: SubscriptionId, caller: Subscribers, runtime: RuntimeOf) -> SubscriptionOut:
    return subscriptions.set_active(runtime, caller, subscription, False)


@router.post(
    "/subscriptions/{subscription}/resume",
    response_model=SubscriptionOut,
    summary="Resume deliveries: what waited goes, in order",
)
def resume(subscription: SubscriptionId, caller: Subscribers, runtime: RuntimeOf) -> SubscriptionOut:
    return subscriptions.set_active(runtime, caller, subscription, True)


@router.post(
    "/subscriptions/{subscription}/replay",
    response_model=Replayed,
    summary="Deliver again the events from an event id, or from a position of a service's feed, on",
)
def replay(subscription: SubscriptionId, body: ReplayIn, caller: Subscribers, runtime: RuntimeOf) -> Replayed:
    return subscriptions.replay(runtime, caller, subscription, body)


@router.get(
    "/subscriptions/{subscription}/deliveries",
    response_model=SubscriptionDeliveries,
    summary="The subscription's deliveries with every attempt (status code, time, duration)",
)
def deliveries(
    subscription: SubscriptionId,
    caller: Subscribers,
    runtime: RuntimeOf,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Literal["pending", "sending", "sent", "dead"] | None = None,
) -> SubscriptionDeliveries:
    return subscriptions.delivery_log(runtime, caller, subscription, after, limit, status)
