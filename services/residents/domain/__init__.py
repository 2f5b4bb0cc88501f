"""The residents service's domain rules: plain Python, no I/O.

Aggregates (``Compound``, ``Building``, ``Household``, ``Staff``, ``Volunteer``, ``BuildingRoles``, ``Zone``) decide on
commands and record events; their state changes only in ``on_<Event>`` methods. Facts that live in other
aggregates (a building's size, which volunteers are enlisted where) are passed in by the caller. One module per
part of the register: ``households`` (buildings, households, needs), ``teams`` (staff coverage, volunteers and
their roles), ``zones`` (zone status by date), ``rows`` (the checks of a bulk import's rows), and for the
committee's own sheets ``headings`` (which field a heading names), ``notation`` (1502, 12号楼, 是/否) and
``wording`` (every import problem in English and Chinese).
"""

from __future__ import annotations

from services.residents.domain.compounds import Compound, ZoneRules
from services.residents.domain.households import (
    ELDERLY_AGE,
    Building,
    Household,
    Member,
    Needs,
    elderly,
)
from services.residents.domain.rows import (
    ID_CHECK_CHARS,
    ID_WEIGHTS,
    IMPORT_COLUMNS,
    NEEDS_COLUMNS,
    BuildingIndex,
    ImportRow,
    RegisteredBuilding,
    RowError,
    household_id,
    id_check_char,
    id_number_problem,
    normalise_phone,
    phone_problem,
    validate_rows,
)
from services.residents.domain.teams import (
    LOGISTICS_GROUP_SIZE,
    MAX_BUILDINGS_PER_STAFF,
    ROLES,
    SHIFTS,
    BuildingRoles,
    Coverage,
    Staff,
    Volunteer,
    find_by_skill,
    normalise_skill,
    staff_coverage,
)
from services.residents.domain.zones import (
    PRECAUTION_DAYS,
    SEALED_DAYS,
    ZONES,
    Zone,
    ZoneView,
    strictest,
    zone_for,
)

__all__ = [
    "ELDERLY_AGE",
    "ID_CHECK_CHARS",
    "ID_WEIGHTS",
    "IMPORT_COLUMNS",
    "LOGISTICS_GROUP_SIZE",
    "MAX_BUILDINGS_PER_STAFF",
    "NEEDS_COLUMNS",
    "PRECAUTION_DAYS",
    "ROLES",
    "SEALED_DAYS",
    "SHIFTS",
    "ZONES",
    "Building",
    "BuildingIndex",
    "BuildingRoles",
    "Compound",
    "Coverage",
    "Household",
    "ImportRow",
    "Member",
    "Needs",
    "RegisteredBuilding",
    "RowError",
    "Staff",
    "Volunteer",
    "Zone",
    "ZoneRules",
    "ZoneView",
    "elderly",
    "find_by_skill",
    "household_id",
    "id_check_char",
    "id_number_problem",
    "normalise_phone",
    "normalise_skill",
    "phone_problem",
    "staff_coverage",
    "strictest",
    "validate_rows",
    "zone_for",
]
