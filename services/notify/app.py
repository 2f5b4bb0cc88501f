"""Wiring of the notify service: one official group per building, and fan-out that never loses or doubles."""

from __future__ import annotations

from pathlib import Path

from contracts import roles as r
from contracts.access import feed_access
from contracts.notify import registry
from juwei.projection import Projection
from juwei.service import ServiceDefinition, foreign_events, handled_by
from services.notify import dispatch, handlers, retention
from services.notify.account import sending
from services.notify.api import router
from services.notify.calls import views as calls
from services.notify.calls.application import OVERDUE_COUNT_SECONDS, count_overdue
from services.notify.calls.domain import WORDING
from services.notify.subscriptions import fanout
from services.notify.views import projections as group_projections


def projections() -> list[Projection]:
    """Notify's read models: groups, channels, messages, questions, and the unreachable's calls."""
    return [*group_projections(), *calls.projections()]


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
policy = dispatch.DispatchPolicy.from_env()

service = ServiceDefinition(
    name="notify",
    description="Building groups, channels, announcements, questions and answers, fan-out with a delivery log, "
    "and a live board per building.",
    registry=registry,
    routers=[router],
    projections=projections,
    # What notify reads of the other services: the events its rules announce, and what its projections keep
    # (building groups and their members, sampling points' names, people who leave the register).
    consumed_events=foreign_events(registry, projections(), handlers.EVENT_HANDLERS),
    # notify's handlers, then the webhook subscriptions' queue, in the consumer's transaction.
    on_received=fanout.received_by(handled_by(handlers.EVENT_HANDLERS)),
    # The dispatcher; overdue calls counted; the daily account, checked every minute, sent once the set hour has passed.
    periodic=[
        (policy.tick, dispatch.job(policy)),
        (OVERDUE_COUNT_SECONDS, count_overdue),
        (sending.check_seconds(), sending.job(sending.hour_from_env())),
    ],
    retention=retention.scrub,
    wording=WORDING,  # the call lists' refusals in Chinese
    feed_access=feed_access(),
    auditors=r.STAFF,
    # No health_key: notify is not granted health data, and cannot open the sealed flags it receives.
    migrations=MIGRATIONS,
)
