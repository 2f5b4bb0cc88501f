"""Building groups, the channels operators attach to them, and the compound's quiet hours.

A channel's configuration (webhook URL with its key, signing secret, SMTP password, recipients) is sealed
in the vault under the channel's own key before it is stored, never returned, and shredded on detach.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update

from contracts.ids import global_id, local_id
from juwei.aggregate import Invalid, NotFound
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.notify.channels import describe, validate_config
from services.notify.domain import Channel, QuietHours
from services.notify.models import ChannelIn, ChannelOut, ChannelUpdate, QuietHoursIn
from services.notify.views import channel_state, channels, deliveries, groups, households, quiet_hours


def require_group(session: Session, compound: str, building: str) -> str:
    """The building's id on the bus, if residents has registered it (its group exists)."""
    target = global_id(compound, building)
    if session.execute(select(groups.c.building).where(groups.c.building == target)).first() is None:
        raise NotFound(f"building {building} has no group (not registered with residents yet)", code="building-unknown")
    return target


def _validated(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_config(kind, config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise Invalid(f"config.{where}: {first.get('msg')}", code="validation") from None


def channel_out(session: Session, runtime: Runtime, row: Any) -> ChannelOut:
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


def list_groups(runtime: Runtime, compound: str) -> dict[str, Any]:
    """The compound's building groups: households, members (representatives) and channels of each."""
    with runtime.database.reading() as session:
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


def get_group(runtime: Runtime, caller: Caller, compound: str, building: str) -> dict[str, Any]:
    """One building group and its members (ids)."""
    caller.require_scope(compound, building)
    with runtime.database.reading() as session:
        target = require_group(session, compound, building)
        number = session.execute(select(groups.c.number).where(groups.c.building == target)).scalar()
        homes = session.execute(
            select(households.c.household, households.c.representative)
            .where(households.c.building == target)
            .order_by(households.c.household)
        ).all()
        listed = [
            channel_out(session, runtime, row)
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


def attach_channel(unit: UnitOfWork, caller: Caller, building: str, body: ChannelIn) -> ChannelOut:
    """Attach a channel to a building group; its configuration is sealed under the channel's own key."""
    compound = unit.compound
    caller.require_scope(compound, building)
    config = _validated(body.kind, body.config)
    channel = global_id(compound, f"ch-{secrets.token_hex(4)}")
    runtime = unit.runtime
    with unit:
        target = require_group(unit.session, compound, building)
        sealed = runtime.vault.seal(unit.session, channel, config)
        unit.load_or_new(Channel, channel).attach(target, body.kind, body.language, body.label, sealed)
    with runtime.database.reading() as session:
        row = session.execute(select(channels).where(channels.c.channel == channel)).mappings().one()
        return channel_out(session, runtime, row)


def list_channels(runtime: Runtime, caller: Caller, compound: str, building: str) -> list[ChannelOut]:
    """The channels of a building group (without their secrets)."""
    caller.require_scope(compound, building)
    with runtime.database.reading() as session:
        target = require_group(session, compound, building)
        rows = (
            session.execute(select(channels).where(channels.c.building == target).order_by(channels.c.attached_at))
            .mappings()
            .all()
        )
        return [channel_out(session, runtime, row) for row in rows]


def own_channel(session: Session, compound: str, building: str, channel: str) -> Any:
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
        raise NotFound(f"building {building} has no channel {channel}")
    return row


def reconfigure_channel(
    unit: UnitOfWork, caller: Caller, building: str, channel: str, body: ChannelUpdate
) -> ChannelOut:
    """New configuration for a channel (key rotation, the fix after a bad signature)."""
    caller.require_scope(unit.compound, building)
    runtime = unit.runtime
    with unit:
        row = own_channel(unit.session, unit.compound, building, channel)
        config = _validated(row["kind"], body.config)
        sealed = runtime.vault.seal(unit.session, row["channel"], config)
        unit.load(Channel, row["channel"]).reconfigure(sealed, body.language)
        # Fixed: the dispatcher may use it again at once.
        unit.session.execute(
            update(channel_state)
            .where(channel_state.c.channel == row["channel"])
            .values(broken=None, blocked_until=None)
        )
    with runtime.database.reading() as session:
        fresh = session.execute(select(channels).where(channels.c.channel == row["channel"])).mappings().one()
        return channel_out(session, runtime, fresh)


def detach_channel(unit: UnitOfWork, caller: Caller, building: str, channel: str) -> None:
    """Detach a channel: its secrets are shredded, what was still queued for it is cancelled."""
    caller.require_scope(unit.compound, building)
    with unit:
        row = own_channel(unit.session, unit.compound, building, channel)
        unit.load(Channel, row["channel"]).detach()
        unit.runtime.vault.shred(unit.session, row["channel"])
        unit.session.execute(
            update(deliveries)
            .where(deliveries.c.channel == row["channel"], deliveries.c.status == "pending")
            .values(status="cancelled", last_code="channel-detached")
        )


def set_quiet_hours(unit: UnitOfWork, body: QuietHoursIn) -> None:
    with unit:
        unit.load_or_new(QuietHours, unit.compound).set(body.start, body.end)


def get_quiet_hours(runtime: Runtime, compound: str) -> dict[str, Any]:
    with runtime.database.reading() as session:
        row = session.execute(select(quiet_hours).where(quiet_hours.c.compound == compound)).first()
    return {"start": row.start if row else None, "end": row.end if row else None, "timezone": runtime.settings.timezone}
