"""The roles an API key can carry, in the committee's words; every service admits some of them."""

from __future__ import annotations

from juwei.callers import OPERATOR_ROLE, Holder

DISTRICT_OPERATOR = OPERATOR_ROLE  # runs the deployment for every compound of the district
COMMITTEE_STAFF = "committee-staff"  # the secretary and the six members: their compound
INFORMATION_OFFICER = "information-officer"  # one volunteer per building: surveys and data of their building
LOGISTICS_VOLUNTEER = "logistics-volunteer"  # carries supplies in their building
SAMPLING_VOLUNTEER = "sampling-volunteer"  # staffs a sampling point
SUBDISTRICT_STAFF = "subdistrict-staff"  # the office above the committee (medicine runs)
HOUSEHOLD = "household"  # a household's representative
EXTERNAL_CONSUMER = "external-consumer"  # another system reading the event feed

STAFF = (DISTRICT_OPERATOR, COMMITTEE_STAFF)
ALL = (
    DISTRICT_OPERATOR,
    COMMITTEE_STAFF,
    INFORMATION_OFFICER,
    LOGISTICS_VOLUNTEER,
    SAMPLING_VOLUNTEER,
    SUBDISTRICT_STAFF,
    HOUSEHOLD,
    EXTERNAL_CONSUMER,
)

# Roles whose work needs health data (a household: its own members').
HEALTH_ROLES = frozenset({DISTRICT_OPERATOR, COMMITTEE_STAFF, INFORMATION_OFFICER, SUBDISTRICT_STAFF, HOUSEHOLD})
# Who may hold a key of each role: people of the register are checked against it when the key is made.
HOLDERS: dict[str, tuple[str, ...]] = {
    DISTRICT_OPERATOR: ("official", "system"),
    COMMITTEE_STAFF: ("staff",),
    INFORMATION_OFFICER: ("volunteer",),
    LOGISTICS_VOLUNTEER: ("volunteer",),
    SAMPLING_VOLUNTEER: ("volunteer",),
    SUBDISTRICT_STAFF: ("official",),
    HOUSEHOLD: ("household",),
    EXTERNAL_CONSUMER: ("system",),
}


def holder_problem(role: str, holder: Holder) -> str | None:
    """Why ``holder`` may not hold a key of ``role`` (None when they may)."""
    kinds = HOLDERS.get(role)
    if kinds is None:
        return f"unknown role {role!r} (one of {', '.join(ALL)})"
    if holder.kind not in kinds:
        return f"a {role} key is issued to a {' or '.join(kinds)}, not to a {holder.kind}"
    return None
