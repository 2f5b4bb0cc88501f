"""What the testing service does besides answering requests: check what it receives, call on schedule."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select

from juwei.events import utcnow
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.testing.domain import CallQueue
from services.testing.views import calls, rounds, utc

log = structlog.get_logger("testing.handlers")


def advance_call_plans(runtime: Runtime, at: datetime | None = None) -> int:
    """Periodic: rounds that advance on their own call each unit whose planned time has come.

    Returns how many units were called. A volunteer's "call next" and this job share the queue's stream,
    so a unit is never called twice (the loser of a race gets a concurrency error and tries next tick).
    """
    moment = at or utcnow()
    made = 0
    with runtime.database.reading() as session:
        due = session.execute(
            select(calls.c["round"], calls.c.point, calls.c.compound, calls.c.starts_at)
            .join(rounds, rounds.c["round"] == calls.c["round"])
            .where(rounds.c.auto_advance.is_(True), calls.c.called_at.is_(None))
        ).all()
    queues: dict[tuple[str, str], str] = {}
    for round_id, point, compound, starts_at in due:
        when = utc(starts_at)
        if when is not None and when <= moment:
            queues[(round_id, point)] = compound
    for (round_id, point), compound in sorted(queues.items()):
        with UnitOfWork(runtime, compound, actor=None) as unit:
            queue = unit.load(CallQueue, CallQueue.id_of(round_id, point))
            while queue.next_call is not None and queue.next_call.starts_at <= moment:
                queue.call_next(round_id, point, at=moment, by="schedule")
                made += 1
    if made:
        log.info("testing.calls_advanced", calls=made)
    return made
