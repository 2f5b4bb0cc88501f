"""Whether the person a key is issued to is in the register: a staff member, a serving volunteer, a household.

``juwei keys create`` asks this before it stores a key anywhere, so that every key names someone the
committee registered (and no key goes to a volunteer who was stood down).
"""

from __future__ import annotations

from sqlalchemy import select

from contracts.ids import local_id
from juwei.callers import Holder
from juwei.repository import Repository
from juwei.service import Runtime
from services.residents import views
from services.residents.domain import Staff, Volunteer


def check(runtime: Runtime, holder: Holder) -> tuple[str | None, str | None]:
    """(why the holder cannot have a key or None, the building they live or serve in, local id, if any)."""
    if holder.kind not in ("staff", "volunteer", "household"):
        return None, None
    if ":" not in holder.id:
        return f"{holder.kind} {holder.id} needs its compound (<compound>:<id>)", None
    with runtime.database.reading() as session:
        if holder.kind == "staff":
            if runtime.store.stream_version(session, Staff.stream_id(holder.id)) == 0:
                return f"staff member {local_id(holder.id)} is not registered (assign their buildings first)", None
            return None, None
        if holder.kind == "volunteer":
            person = Repository(runtime.store, Volunteer).load(session, holder.id)
            if not person.exists:
                return f"volunteer {local_id(holder.id)} is not enlisted", None
            if person.stood_down:
                return f"volunteer {local_id(holder.id)} was stood down: no key is issued to them", None
            return None, local_id(person.building) if person.building else None
        home = session.execute(
            select(views.households.c.building).where(views.households.c.household == holder.id)
        ).scalar()
        if home is None:
            return f"household {local_id(holder.id)} is not registered", None
        return None, local_id(home)
