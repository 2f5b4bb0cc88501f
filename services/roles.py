"""The roles an API key can carry, in the committee's words; every service admits some of them."""

from juwei.service import OPERATOR_ROLE

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


def global_id(compound: str, local: str) -> str:
    """Ids on the bus are unique in the whole district: ``<compound>:<id in the compound>``."""
    return f"{compound}:{local}"


def local_id(value: str) -> str:
    return value.split(":", 1)[1] if ":" in value else value
