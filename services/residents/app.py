"""Wiring of the residents service: the committee's register of who lives where and who does what."""

from __future__ import annotations

import os
from pathlib import Path

from contracts import roles as r
from contracts.access import feed_access, health_key
from contracts.residents import registry
from juwei.service import ServiceDefinition, foreign_events, handled_by
from services.residents import handlers, holders, retention
from services.residents.api import router
from services.residents.commands import commands
from services.residents.domain import Zone
from services.residents.domain.alerts import Sender
from services.residents.domain.households import REACH_WORDING
from services.residents.views import projections

# Thresholds of the zone rules (Shanghai, April 2022: 7 and 14 days), configurable per deployment.
Zone.sealed_days = int(os.environ.get("JUWEI_ZONE_SEALED_DAYS", Zone.sealed_days))
Zone.precaution_days = int(os.environ.get("JUWEI_ZONE_PRECAUTION_DAYS", Zone.precaution_days))
ZONE_REFRESH_SECONDS = float(os.environ.get("JUWEI_ZONE_REFRESH_SECONDS", "300"))
# Who the zone alerts (CAP 1.2) say sent them; ``{compound}`` is filled in. A bad one stops the start.
Sender.template = Sender.check(os.environ.get("JUWEI_CAP_SENDER", Sender.template))

service = ServiceDefinition(
    name="residents",
    description="Buildings, households, residents, staff, volunteers and zone status of each compound.",
    registry=registry,
    routers=[router],
    projections=projections,
    consumed_events=foreign_events(registry, projections(), handlers.EVENT_HANDLERS),
    on_received=handled_by(handlers.EVENT_HANDLERS),
    periodic=[(ZONE_REFRESH_SECONDS, handlers.let_the_days_count)],
    retention=retention.scrub,
    wording=REACH_WORDING,  # the household marks' refusals in Chinese
    # Keys issued over HTTP go only to people of the register (no stood-down volunteer), in their building.
    holder_check=holders.check,
    feed_access=feed_access(),
    auditors=r.STAFF,
    # Shared with supplies and testing only: residents hands them the keys of the sealed health flags.
    health_key=health_key("JUWEI_HEALTH_KEY"),
    migrations=Path(__file__).resolve().parent / "migrations",
    commands=commands,
)
