"""Wiring of the notify service: one official group per building, and fan-out that never loses or doubles."""

from __future__ import annotations

from pathlib import Path

from juwei.service import ServiceDefinition
from services import roles as r
from services.access import feed_access
from services.notify import dispatch, handlers, retention
from services.notify.api import router
from services.notify.events import registry
from services.notify.views import projections

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
policy = dispatch.DispatchPolicy.from_env()

service = ServiceDefinition(
    name="notify",
    description="Building groups, channels, announcements, questions and answers, fan-out with a delivery log, "
    "and a live board per building.",
    registry=registry,
    routers=[router],
    projections=projections,
    consumes=handlers.CONSUMED_TOPICS,
    catalogue=handlers.CATALOGUE,
    on_received=handlers.on_received,
    periodic=[(policy.tick, dispatch.job(policy))],
    retention=retention.scrub,
    feed_access=feed_access(),
    auditors=r.STAFF,
    # No health_key: notify is not granted health data, and cannot open the sealed flags it receives.
    migrations=MIGRATIONS,
)
