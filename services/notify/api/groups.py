"""Routes of building groups, the channels operators attach to them, and the compound's quiet hours."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contracts.access import CompoundPeople, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.notify.application import groups
from services.notify.models import (
    ChannelIn,
    ChannelOut,
    ChannelUpdate,
    GroupList,
    GroupOut,
    QuietHoursIn,
    QuietHoursOut,
)

router = APIRouter(tags=["groups"])


@router.get("/compounds/{compound}/groups", response_model=GroupList, summary="The compound's building groups")
def list_groups(compound: CompoundId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return groups.list_groups(runtime, compound)


@router.get(
    "/compounds/{compound}/groups/{building}",
    response_model=GroupOut,
    summary="One building group and its members (ids)",
)
def get_group(compound: CompoundId, building: LocalId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return groups.get_group(runtime, caller, compound, building)


@router.post(
    "/compounds/{compound}/groups/{building}/channels",
    status_code=201,
    response_model=ChannelOut,
    summary="Attach a channel to a building group",
)
def attach_channel(compound: CompoundId, building: LocalId, body: ChannelIn, caller: Staff, unit: Unit) -> ChannelOut:
    return groups.attach_channel(unit, caller, building, body)


@router.get(
    "/compounds/{compound}/groups/{building}/channels",
    response_model=list[ChannelOut],
    summary="The channels of a building group (without their secrets)",
)
def list_channels(compound: CompoundId, building: LocalId, caller: Staff, runtime: RuntimeOf) -> list[ChannelOut]:
    return groups.list_channels(runtime, caller, compound, building)


@router.put(
    "/compounds/{compound}/groups/{building}/channels/{channel}",
    response_model=ChannelOut,
    summary="New configuration for a channel (key rotation, the fix after a bad signature)",
)
def reconfigure_channel(
    compound: CompoundId, building: LocalId, channel: LocalId, body: ChannelUpdate, caller: Staff, unit: Unit
) -> ChannelOut:
    return groups.reconfigure_channel(unit, caller, building, channel, body)


@router.delete(
    "/compounds/{compound}/groups/{building}/channels/{channel}",
    status_code=204,
    summary="Detach a channel: its secrets are shredded, what was still queued for it is cancelled",
)
def detach_channel(compound: CompoundId, building: LocalId, channel: LocalId, caller: Staff, unit: Unit) -> None:
    groups.detach_channel(unit, caller, building, channel)


@router.put(
    "/compounds/{compound}/quiet-hours",
    response_model=QuietHoursOut,
    summary="Quiet hours (compound time): only critical messages ring",
)
def set_quiet_hours(compound: CompoundId, body: QuietHoursIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    groups.set_quiet_hours(unit, body)
    return {"start": body.start, "end": body.end, "timezone": unit.runtime.settings.timezone}


@router.get("/compounds/{compound}/quiet-hours", response_model=QuietHoursOut, summary="The compound's quiet hours")
def get_quiet_hours(compound: CompoundId, caller: CompoundPeople, runtime: RuntimeOf) -> dict[str, Any]:
    return groups.get_quiet_hours(runtime, compound)
