"""Wiring of the testing service: rounds, sampling points, floor-by-floor calls, results, cases, transfers."""

from __future__ import annotations

import os
from pathlib import Path

from contracts import roles as r
from contracts.access import feed_access, health_key
from contracts.testing import registry
from juwei.service import ServiceDefinition, foreign_events
from services.testing import handlers, retention
from services.testing.api import photo_links, router
from services.testing.application.keys import bind_issued
from services.testing.application.labfiles import LAB_FILE_ZH
from services.testing.domain.fhir import WORDING
from services.testing.views import point_of, projections

# How often rounds that advance on their own look for units whose planned time has come.
CALL_TICK_SECONDS = float(os.environ.get("JUWEI_TESTING_CALL_TICK_SECONDS", "30"))

service = ServiceDefinition(
    name="testing",
    description=(
        "Sampling points, PCR rounds and antigen days, floor-by-floor call plans, pooled tubes and results, "
        "coverage, cases, transfers and disinfection of each compound."
    ),
    registry=registry,
    routers=[router],
    projections=projections,
    # The catalogue of what it reads makes a payload that breaks residents' published schema poison; nothing
    # else is done per received event, so the consumer hands whole polls to the register projection.
    consumed_events=foreign_events(registry, projections()),
    periodic=[(CALL_TICK_SECONDS, handlers.advance_call_plans)],
    retention=retention.scrub,
    # A household's key issued over HTTP is bound to its household here, as testing's own household keys are.
    key_issued=bind_issued,
    feed_access=feed_access(point_of=point_of),
    auditors=r.STAFF,
    # Shared with residents and supplies: testing is handed the keys of residents' sealed health flags
    # (who is bedridden is sampled at home).
    health_key=health_key("JUWEI_HEALTH_KEY"),
    # Its own refusals said in Chinese (the FHIR search's, a lab file's and the photo links').
    wording={**WORDING, **LAB_FILE_ZH, **photo_links.WORDING},
    migrations=Path(__file__).resolve().parent / "migrations",
)
