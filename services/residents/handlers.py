"""Events the residents service consumes: confirmed cases (from testing) move zones; days passing too."""

from __future__ import annotations

from datetime import date

import structlog
from sqlalchemy import select

from contracts.testing import CaseConfirmed
from juwei.events import DomainEvent, Envelope
from juwei.repository import Repository
from juwei.service import EventHandler, Runtime
from juwei.session import Session
from services.residents.domain import Compound, Zone, ZoneRules
from services.residents.views import zones

log = structlog.get_logger("residents.handlers")


def case_confirmed(runtime: Runtime, session: Session, event: CaseConfirmed, envelope: Envelope) -> None:
    record_case(runtime, session, envelope.compound, event.building, event.confirmed_on)


def zone_rules(runtime: Runtime, session: Session, compound: str) -> ZoneRules:
    """The compound's zone rules in force: its own (from its stream, never stale), else the deployment's."""
    default = ZoneRules(Zone.sealed_days, Zone.precaution_days)
    return Repository(runtime.store, Compound).load(session, compound).zone_rules(default)


def load_zone(runtime: Runtime, session: Session, scope_id: str, rules: ZoneRules) -> Zone:
    """A building's or the compound's zone, following the compound's rules."""
    return Repository(runtime.store, Zone).load(session, scope_id).follow(rules.sealed_days, rules.precaution_days)


def record_case(runtime: Runtime, session: Session, compound: str, building: str, case_on: date) -> None:
    """Re-seal the building, then let the compound's zone follow its buildings."""
    today = max(runtime.settings.local_today(), case_on)  # a result stamped just past midnight elsewhere
    repository = Repository(runtime.store, Zone)
    zone = load_zone(runtime, session, building, zone_rules(runtime, session, compound))
    zone.record_case(case_on, today=today)
    repository.save(session, zone, compound=compound)
    reconcile_compound(runtime, session, compound, today)


def reconcile_compound(runtime: Runtime, session: Session, compound: str, today: date) -> None:
    repository = Repository(runtime.store, Zone)
    rules = zone_rules(runtime, session, compound)
    buildings = [
        load_zone(runtime, session, scope_id, rules)
        for scope_id in session.execute(
            select(zones.c.scope_id).where(zones.c.compound == compound, zones.c.scope == "building")
        ).scalars()
    ]
    whole = load_zone(runtime, session, compound, rules)
    whole.reconcile(buildings, today=today)
    repository.save(session, whole, compound=compound)


def refresh_compound(runtime: Runtime, session: Session, compound: str, today: date) -> None:
    """Let one compound's zones follow its rules today (after the rules changed)."""
    repository = Repository(runtime.store, Zone)
    rules = zone_rules(runtime, session, compound)
    for scope_id in session.execute(
        select(zones.c.scope_id).where(zones.c.compound == compound, zones.c.scope == "building")
    ).scalars():
        zone = load_zone(runtime, session, scope_id, rules)
        zone.refresh(today)
        repository.save(session, zone, compound=compound)
    reconcile_compound(runtime, session, compound, today)


def let_the_days_count(runtime: Runtime) -> None:
    """Periodic: zones move from sealed to controlled to precaution as days pass without a new case."""
    today = runtime.settings.local_today()
    repository = Repository(runtime.store, Zone)
    with runtime.database.unit_of_work() as session:
        rows = session.execute(select(zones.c.scope_id, zones.c.compound, zones.c.scope)).all()
        rules = {compound: zone_rules(runtime, session, compound) for compound in {row[1] for row in rows}}
        for scope_id, compound, scope in rows:
            if scope == "building":
                zone = load_zone(runtime, session, scope_id, rules[compound])
                zone.refresh(today)
                repository.save(session, zone, compound=compound)
        for compound in {compound for _, compound, _ in rows}:
            reconcile_compound(runtime, session, compound, today)


# What residents does with the other services' events: a confirmed case re-seals its building.
EVENT_HANDLERS: dict[type[DomainEvent], EventHandler] = {CaseConfirmed: case_confirmed}
