"""Who may hold a key in this suite: the role's kind of holder (``contracts.roles``), and people of the register
(staff, serving volunteers, households) as the residents service knows them."""

from __future__ import annotations

from contracts import roles as r
from contracts.roles import holder_problem
from juwei.callers import Holder
from juwei.registration import KeyHolders


def in_the_register(holder: Holder) -> tuple[str | None, str | None]:
    """(why the holder cannot have a key or None, the building they live or serve in, local id, if any)."""
    from juwei.service import Runtime, load_definition
    from services.residents.holders import check

    runtime = Runtime(load_definition("residents"))
    runtime.migrate()
    try:
        return check(runtime, holder)
    finally:
        runtime.database.dispose()


# Who hands out keys over HTTP: committee staff invite their compound's volunteers and households, the
# operator also the committee's staff.
_INVITED = frozenset({r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER, r.SAMPLING_VOLUNTEER, r.HOUSEHOLD})
ISSUES = {r.DISTRICT_OPERATOR: _INVITED | {r.COMMITTEE_STAFF}, r.COMMITTEE_STAFF: _INVITED}

KEY_HOLDERS = KeyHolders(problem=holder_problem, check=in_the_register, issues=ISSUES)
