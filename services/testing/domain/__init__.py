"""The testing service's domain rules: plain Python, no I/O.

- ``planner``: the call planner (testing without crowds) and the balanced building→point assignment.
- ``points``: ``SamplingPoint`` and ``PointAssignment``; ``rounds``: ``Round`` and ``CallQueue`` (one point's
  calls in one round); ``samples``: ``Tube`` (pooled or individual PCR) and ``SelfReports`` (a household's
  antigen results in a round); ``cases``: ``Case`` (confirmed → transfer scheduled → transferred → closed)
  and ``Disinfection``.
- ``progress``: a resident's status in a round, which decides what kind of sample they may give next.

Facts that live elsewhere (who lives where, a resident's status in the round) are passed in by the caller.
"""

from __future__ import annotations

from services.testing.domain.cases import (
    CASE_STATUSES,
    CLOCK_SLACK,
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    OUTCOMES,
    Case,
    Disinfection,
    photo_type,
)
from services.testing.domain.planner import (
    FLOOR_ORDERS,
    MODES,
    BuildingLayout,
    CallPlan,
    CallRules,
    Occupant,
    PointCapacity,
    ScheduledCall,
    Timetable,
    Unit,
    natural_key,
    plan_round,
    propose_assignment,
    timetable,
    units_of,
)
from services.testing.domain.points import (
    PointAssignment,
    SamplingPoint,
    check_point_volunteers,
)
from services.testing.domain.progress import (
    AWAITING_RESULT,
    MILESTONES,
    NEXT_SAMPLE,
    TO_RESAMPLE,
    listed_twice,
    milestone_passed,
    sample_kind,
    status_after,
    tested,
)
from services.testing.domain.rounds import (
    MAX_POOL_SIZE,
    POOL_SIZE,
    ROUND_KINDS,
    CallQueue,
    Round,
)
from services.testing.domain.samples import (
    MAX_UPLOAD_TUBES,
    PLATE_WELLS,
    RESULTS,
    Confirmation,
    SelfReports,
    Swab,
    Tube,
)

__all__ = [
    "AWAITING_RESULT",
    "CASE_STATUSES",
    "CLOCK_SLACK",
    "FLOOR_ORDERS",
    "MAX_PHOTOS",
    "MAX_PHOTO_BYTES",
    "MAX_POOL_SIZE",
    "MAX_UPLOAD_TUBES",
    "MILESTONES",
    "MODES",
    "NEXT_SAMPLE",
    "OUTCOMES",
    "PLATE_WELLS",
    "POOL_SIZE",
    "RESULTS",
    "ROUND_KINDS",
    "TO_RESAMPLE",
    "BuildingLayout",
    "CallPlan",
    "CallQueue",
    "CallRules",
    "Case",
    "Confirmation",
    "Disinfection",
    "Occupant",
    "PointAssignment",
    "PointCapacity",
    "Round",
    "SamplingPoint",
    "ScheduledCall",
    "SelfReports",
    "Swab",
    "Timetable",
    "Tube",
    "Unit",
    "check_point_volunteers",
    "listed_twice",
    "milestone_passed",
    "natural_key",
    "photo_type",
    "plan_round",
    "propose_assignment",
    "sample_kind",
    "status_after",
    "tested",
    "timetable",
    "units_of",
]
