"""Wiring of the supplies service: supply batches and deliveries, logistics shifts, medicine, donations."""

from __future__ import annotations

import os
from pathlib import Path

from contracts import roles as r
from contracts.access import feed_access, health_key
from contracts.supplies import registry
from juwei.service import ServiceDefinition, foreign_events, handled_by
from services.supplies import handlers, retention
from services.supplies.api import router
from services.supplies.policy import default_policy
from services.supplies.views import projections

default_policy()  # a bad JUWEI_SUPPLIES_* setting stops the service at start, not at its first request

# How often cards are checked against their return limit (the limit itself is part of each compound's policy).
CUSTODY_CHECK_SECONDS = float(os.environ.get("JUWEI_SUPPLIES_CUSTODY_CHECK_SECONDS", "300"))

service = ServiceDefinition(
    name="supplies",
    description=(
        "Supply batches and their allocation per household, A/B logistics shifts, deliveries and follow-ups, "
        "the custody chain of medical-insurance cards for medicine runs, donations and the public ledger."
    ),
    registry=registry,
    routers=[router],
    projections=projections,
    consumed_events=foreign_events(registry, projections(), handlers.EVENT_HANDLERS),
    on_received=handled_by(handlers.EVENT_HANDLERS),
    periodic=[(CUSTODY_CHECK_SECONDS, handlers.raise_overdue_alerts)],
    retention=retention.scrub,
    feed_access=feed_access(),
    auditors=r.STAFF,
    # Shared with residents and testing: supplies is handed the keys of residents' sealed health flags
    # (needs-based allocation).
    health_key=health_key("JUWEI_HEALTH_KEY"),
    migrations=Path(__file__).resolve().parent / "migrations",
)
