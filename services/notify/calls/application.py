"""The officer's call list, the done mark, and staff's overdue calls (read from ``notify_calls``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Select, func, select

from contracts.ids import global_id, local_id
from juwei.aggregate import NotFound
from juwei.callers import Caller
from juwei.events import utcnow
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.notify.calls.domain import CallList
from services.notify.calls.models import CallListOut, CallOut, OverdueOut
from services.notify.calls.views import calls, unreachable
from services.notify.domain import building_label
from services.notify.views import groups, messages

OVERDUE = Gauge(
    "juwei_notify_calls_overdue",
    "Calls to households in no group not done by their deadline, as of the last count",
    ["compound"],
    multiprocess_mode="livemax",
)
OVERDUE_COUNT_SECONDS = 60.0
_COLUMNS = (
    calls,
    unreachable.c.floor,
    unreachable.c.room,
    unreachable.c.reason,
    groups.c.number,
    messages.c.template,
    messages.c.priority,
    messages.c.title_zh,
    messages.c.body_zh,
)


def _calls() -> Select[Any]:
    return (
        select(*_COLUMNS)
        .select_from(calls)
        .outerjoin(unreachable, unreachable.c.household == calls.c.household)
        .outerjoin(groups, groups.c.building == calls.c.building)
        .outerjoin(messages, messages.c.message == calls.c.message)
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite drops the zone


def _out(row: Any, now: datetime) -> CallOut:
    say = "\n".join(part for part in (row.title_zh or "", row.body_zh or "") if part.strip())
    return CallOut(
        call=local_id(row.call),
        building=local_id(row.building),
        building_number=building_label(row.number, row.building),
        household=local_id(row.household),
        floor=row.floor,
        room=row.room,
        reason=row.reason,
        message=local_id(row.message),
        template=row.template or "",
        priority=row.priority or "important",
        say=say,
        listed_at=_aware(row.listed_at),
        due_at=_aware(row.due_at),
        overdue=row.done_at is None and _aware(row.due_at) <= now,
        done=row.done_at is not None,
        done_at=_aware(row.done_at) if row.done_at is not None else None,
        done_by=row.done_by,
    )


def building_calls(runtime: Runtime, caller: Caller, compound: str, building: str, status: str) -> CallListOut:
    """The calls of one building for its officer (or staff): open ones by default, oldest first."""
    caller.require_scope(compound, building)
    query = _calls().where(calls.c.building == global_id(compound, building))
    if status == "open":
        query = query.where(calls.c.done_at.is_(None))
    elif status == "done":
        query = query.where(calls.c.done_at.is_not(None))
    now = utcnow()
    with runtime.database.reading() as session:
        rows = session.execute(query.order_by(calls.c.listed_at, calls.c.household)).all()
        still_open = len(session.execute(_open_of(compound, building)).all())
    return CallListOut(building=building, open=still_open, calls=[_out(row, now) for row in rows])


def _open_of(compound: str, building: str) -> Select[Any]:
    return select(calls.c.call).where(calls.c.building == global_id(compound, building), calls.c.done_at.is_(None))


def mark_done(unit: UnitOfWork, caller: Caller, call: str) -> CallOut:
    """The household was told: recorded once, with who and when; marking it again changes nothing."""
    compound = unit.compound
    with unit:
        row = _call_row(unit.session, compound, call)
        caller.require_scope(compound, local_id(row.building))
        unit.load(CallList, row.call_list).mark_done(row.household, caller.key_id)
    with unit.runtime.database.reading() as session:
        return _out(_call_row(session, compound, call), utcnow())


def _call_row(session: Session, compound: str, call: str) -> Any:
    row = session.execute(_calls().where(calls.c.call == global_id(compound, call))).first()
    if row is None:
        raise NotFound(f"call {call} is not on any call list of compound {compound}", code="call-unknown")
    return row


def overdue_calls(runtime: Runtime, compound: str) -> OverdueOut:
    """Open calls past their deadline in the whole compound, the longest overdue first."""
    now = utcnow()
    query = _calls().where(calls.c.compound == compound, calls.c.done_at.is_(None), calls.c.due_at <= now)
    with runtime.database.reading() as session:
        rows = session.execute(query.order_by(calls.c.due_at, calls.c.building, calls.c.household)).all()
    return OverdueOut(overdue=len(rows), calls=[_out(row, now) for row in rows])


def count_overdue(runtime: Runtime) -> None:
    """The periodic count behind ``juwei_notify_calls_overdue``: per compound, 0 once its calls are done."""
    now = utcnow()
    with runtime.database.reading() as session:
        counted = dict(
            session.execute(
                select(calls.c.compound, func.count())
                .where(calls.c.done_at.is_(None), calls.c.due_at <= now)
                .group_by(calls.c.compound)
            ).all()
        )
        compounds = session.execute(select(calls.c.compound).distinct()).scalars().all()
    for compound in compounds:
        OVERDUE.labels(compound=compound).set(int(counted.get(compound, 0)))
