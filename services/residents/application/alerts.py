"""Zone changes as public alerts (CAP 1.2): the latest of a compound (or of one building), and one by identifier.

Zone status is public — the building board shows it — so every key of the compound reads the alerts; another
system's key reads them when its grant names ``juwei.residents.ZoneStatusChanged`` (or names no types at all).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from contracts import roles as r
from contracts.ids import global_id, local_id
from contracts.residents import ZoneStatusChanged
from juwei.aggregate import NotFound
from juwei.callers import Caller, Forbidden
from juwei.service import Runtime
from services.residents.domain.alerts import ZoneAlert
from services.residents.views import buildings, zone_alerts

_COLUMNS = (*zone_alerts.c, buildings.c.number)


def require_zone_reader(caller: Caller) -> None:
    """Another system reads the alerts only when its grant covers zone changes (the compound is checked first)."""
    grant = caller.grant
    if caller.role == r.EXTERNAL_CONSUMER and grant is not None and not grant.names_type(ZoneStatusChanged.type_name()):
        raise Forbidden(
            f"this key's grant does not name {ZoneStatusChanged.event_type}; the district operator grants it",
            code="grant-type",
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite keeps UTC, naive


def _alert(row: Any) -> ZoneAlert:
    building = row["scope_id"] if ":" in row["scope_id"] else None
    supersedes = (row["supersedes"], _aware(row["supersedes_sent"])) if row["supersedes"] else None
    return ZoneAlert(
        identifier=row["identifier"],
        compound=row["compound"],
        building=local_id(building) if building else None,
        building_number=row["number"],
        sent=_aware(row["sent"]),
        zone=row["zone"],
        previous=row["previous"],
        last_case_on=row["last_case_on"],
        days_since_last_case=row["days_since_last_case"],
        next_zone=row["next_zone"],
        next_change_on=row["next_change_on"],
        decided_by_authority=bool(row["decided_by_authority"]),
        supersedes=supersedes,
    )


def _select() -> Any:
    return select(*_COLUMNS).select_from(
        zone_alerts.outerjoin(buildings, buildings.c.building == zone_alerts.c.scope_id)
    )


def latest(runtime: Runtime, caller: Caller, compound: str, building: str | None, limit: int) -> list[ZoneAlert]:
    """The compound's latest alerts, newest first: every building's and the compound's, or one building's."""
    require_zone_reader(caller)
    query = _select().where(zone_alerts.c.compound == compound)
    with runtime.database.reading() as session:
        if building is not None:
            scope_id = global_id(compound, building)
            known = session.execute(select(buildings.c.building).where(buildings.c.building == scope_id)).first()
            if known is None:
                raise NotFound(f"building {building} is not registered", code="building-unknown", building=building)
            query = query.where(zone_alerts.c.scope_id == scope_id)
        rows = session.execute(query.order_by(zone_alerts.c.position.desc()).limit(limit)).mappings().all()
    return [_alert(row) for row in rows]


def one(runtime: Runtime, caller: Caller, compound: str, identifier: str) -> ZoneAlert:
    """One alert of the compound by its identifier."""
    require_zone_reader(caller)
    query = _select().where(zone_alerts.c.identifier == identifier, zone_alerts.c.compound == compound)
    with runtime.database.reading() as session:
        row = session.execute(query).mappings().first()
    if row is None:
        raise NotFound(
            f"compound {compound} has no zone alert {identifier}", code="alert-unknown", identifier=identifier
        )
    return _alert(row)
