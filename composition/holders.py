"""Who may hold a key in this suite: the role's kind of holder (``contracts.roles``), and people of the register
(staff, serving volunteers, households) as the residents service knows them."""

from __future__ import annotations

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


KEY_HOLDERS = KeyHolders(problem=holder_problem, check=in_the_register)
