"""Building groups, the channels operators attach to them, and the compound's quiet hours.

A channel's configuration (webhook URL with its key, signing secret, SMTP password, recipients) is sealed
in the vault under the channel's own key before it is stored, never returned, and shredded on detach.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from juwei.auth import CompoundId, LocalId
from juwei.problems import Problem
from services.notify.api.common import Anyone, Command, StaffOnly, global_id, local_id, require_group, runtime_of
from services.notify.channels import describe, validate_config
from services.notify.domain import Channel, QuietHours
from services.notify.views import channel_state, channels, deliveries, groups, households, quiet_hours

router = APIRouter(tags=["groups"])

Kind = Literal["wecom", "dingtalk", "feishu", "email", "webhook"]


class ChannelIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "dingtalk",
                    "label": "12号楼官方群",
                    "config": {"url": "https://oapi.dingtalk.com/robot/send?access_token=…", "secret": "SEC…"},
                }
            ]
        },
    )
    kind: Kind
    language: Literal["zh", "en"] = "zh"
    label: str = Field("", max_length=100)
    config: dict[str, Any] = Field(
        description="by kind: bots {url, secret?}; webhook {url, secret}; "
        "email {host, port, sender, recipients, username?, password?, "
        "starttls?, ssl?}. Never returned."
    )


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any]
    language: Literal["zh", "en"] | None = None


class ChannelOut(BaseModel):
    channel: str
    building: str
    kind: str
    language: str
    label: str
    endpoint: str = Field(description="host only: keys, secrets and addresses are never shown")
    active: bool
    broken: str | None = Field(None, description="why the platform refuses this channel; fix it with PUT")
    blocked_until: datetime | None = None
    pending: int = 0
    dead: int = 0


def _validated(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_config(kind, config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise Problem(422, f"config.{where}: {first.get('msg')}", "validation") from None


def _channel_out(session: Session, runtime: Any, row: Any) -> ChannelOut:
    config = runtime.vault.unseal(session, row["channel"], row["config"]) if row["active"] else None
    state = session.execute(select(channel_state).where(channel_state.c.channel == row["channel"])).mappings().first()
    counts = dict(
        session.execute(
            select(deliveries.c.status, func.count())
            .where(deliveries.c.channel == row["channel"], deliveries.c.status.in_(["pending", "dead"]))
            .group_by(deliveries.c.status)
        ).all()
    )
    return ChannelOut(
        channel=local_id(row["channel"]),
        building=local_id(row["building"]),
        kind=row["kind"],
        language=row["language"],
        label=row["label"],
        endpoint=describe(row["kind"], config) if config else "",
        active=row["active"],
        broken=state["broken"] if state else None,
        blocked_until=state["blocked_until"] if state else None,
        pending=counts.get("pending", 0),
        dead=counts.get("dead", 0),
    )


@router.get("/compounds/{compound}/groups", summary="The compound's building groups")
def list_groups(compound: CompoundId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        rows = session.execute(select(groups).where(groups.c.compound == compound).order_by(groups.c.number)).all()
        members = dict(
            session.execute(
                select(households.c.building, func.count(households.c.representative))
                .where(households.c.compound == compound)
                .group_by(households.c.building)
            ).all()
        )
        homes = dict(
            session.execute(
                select(households.c.building, func.count())
                .where(households.c.compound == compound)
                .group_by(households.c.building)
            ).all()
        )
        attached = dict(
            session.execute(
                select(channels.c.building, func.count())
                .where(channels.c.compound == compound, channels.c.active.is_(True))
                .group_by(channels.c.building)
            ).all()
        )
    return {
        "groups": [
            {
                "building": local_id(row.building),
                "number": row.number,
                "households": homes.get(row.building, 0),
                "members": members.get(row.building, 0),
                "channels": attached.get(row.building, 0),
            }
            for row in rows
        ]
    }


@router.get("/compounds/{compound}/groups/{building}", summary="One building group and its members (ids)")
def get_group(compound: CompoundId, building: LocalId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound, building)
    with runtime_of(request).database.reading() as session:
        target = require_group(session, compound, building)
        number = session.execute(select(groups.c.number).where(groups.c.building == target)).scalar()
        homes = session.execute(
            select(households.c.household, households.c.representative)
            .where(households.c.building == target)
            .order_by(households.c.household)
        ).all()
        listed = [
            _channel_out(session, runtime_of(request), row)
            for row in session.execute(
                select(channels).where(channels.c.building == target, channels.c.active.is_(True))
            ).mappings()
        ]
    return {
        "building": building,
        "number": number,
        "households": len(homes),
        "members": [
            {"household": local_id(h.household), "representative": local_id(h.representative)}
            for h in homes
            if h.representative
        ],
        "without_representative": sum(1 for h in homes if not h.representative),
        "channels": [c.model_dump(mode="json") for c in listed],
    }


@router.post(
    "/compounds/{compound}/groups/{building}/channels",
    status_code=201,
    response_model=ChannelOut,
    summary="Attach a channel to a building group",
)
def attach_channel(
    compound: CompoundId, building: LocalId, body: ChannelIn, request: Request, caller: StaffOnly
) -> ChannelOut:
    caller.require_scope(compound, building)
    config = _validated(body.kind, body.config)
    local = f"ch-{secrets.token_hex(4)}"
    command = Command(request, caller, compound)
    runtime = command.runtime
    with command.unit():
        target = require_group(command.session, compound, building)
        sealed = runtime.vault.seal(command.session, global_id(compound, local), config)
        command.load(Channel, local).attach(target, body.kind, body.language, body.label, sealed)
    with runtime.database.reading() as session:
        row = session.execute(select(channels).where(channels.c.channel == global_id(compound, local))).mappings().one()
        return _channel_out(session, runtime, row)


@router.get(
    "/compounds/{compound}/groups/{building}/channels",
    response_model=list[ChannelOut],
    summary="The channels of a building group (without their secrets)",
)
def list_channels(compound: CompoundId, building: LocalId, request: Request, caller: StaffOnly) -> list[ChannelOut]:
    caller.require_scope(compound, building)
    runtime = runtime_of(request)
    with runtime.database.reading() as session:
        target = require_group(session, compound, building)
        rows = (
            session.execute(select(channels).where(channels.c.building == target).order_by(channels.c.attached_at))
            .mappings()
            .all()
        )
        return [_channel_out(session, runtime, row) for row in rows]


def _own_channel(session: Session, compound: str, building: str, channel: str) -> Any:
    row = (
        session.execute(
            select(channels).where(
                channels.c.channel == global_id(compound, channel), channels.c.building == global_id(compound, building)
            )
        )
        .mappings()
        .first()
    )
    if row is None or not row["active"]:
        raise Problem(404, f"building {building} has no channel {channel}", "not-found")
    return row


@router.put(
    "/compounds/{compound}/groups/{building}/channels/{channel}",
    response_model=ChannelOut,
    summary="New configuration for a channel (key rotation, the fix after a bad signature)",
)
def reconfigure_channel(
    compound: CompoundId,
    building: LocalId,
    channel: LocalId,
    body: ChannelUpdate,
    request: Request,
    caller: StaffOnly,
) -> ChannelOut:
    caller.require_scope(compound, building)
    command = Command(request, caller, compound)
    runtime = command.runtime
    with command.unit():
        row = _own_channel(command.session, compound, building, channel)
        config = _validated(row["kind"], body.config)
        sealed = runtime.vault.seal(command.session, row["channel"], config)
        command.load(Channel, channel).reconfigure(sealed, body.language)
        # Fixed: the dispatcher may use it again at once.
        command.session.execute(
            update(channel_state)
            .where(channel_state.c.channel == row["channel"])
            .values(broken=None, blocked_until=None)
        )
    with runtime.database.reading() as session:
        fresh = session.execute(select(channels).where(channels.c.channel == row["channel"])).mappings().one()
        return _channel_out(session, runtime, fresh)


@router.delete(
    "/compounds/{compound}/groups/{building}/channels/{channel}",
    status_code=204,
    summary="Detach a channel: its secrets are shredded, what was still queued for it is cancelled",
)
def detach_channel(
    compound: CompoundId, building: LocalId, channel: LocalId, request: Request, caller: StaffOnly
) -> None:
    caller.require_scope(compound, building)
    command = Command(request, caller, compound)
    with command.unit():
        row = _own_channel(command.session, compound, building, channel)
        command.load(Channel, channel).detach()
        command.runtime.vault.shred(command.session, row["channel"])
        command.session.execute(
            update(deliveries)
            .where(deliveries.c.channel == row["channel"], deliveries.c.status == "pending")
            .values(status="cancelled", last_code="channel-detached")
        )


Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"start": "22:00", "end": "07:00"}]})
    start: Clock | None = None
    end: Clock | None = None


@router.put("/compounds/{compound}/quiet-hours", summary="Quiet hours (compound time): only critical messages ring")
def set_quiet_hours(compound: CompoundId, body: QuietHoursIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        command.load(QuietHours, None).set(body.start, body.end)
    return {"start": body.start, "end": body.end, "timezone": command.runtime.settings.timezone}


@router.get("/compounds/{compound}/quiet-hours", summary="The compound's quiet hours")
def get_quiet_hours(compound: CompoundId, request: Request, caller: Anyone) -> dict[str, Any]:
    caller.require_scope(compound)
    runtime = runtime_of(request)
    with runtime.database.reading() as session:
        row = session.execute(select(quiet_hours).where(quiet_hours.c.compound == compound)).first()
    return {"start": row.start if row else None, "end": row.end if row else None, "timezone": runtime.settings.timezone}
