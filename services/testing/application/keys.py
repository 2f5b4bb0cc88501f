"""Where a key may act beyond its role and buildings: a sampling volunteer's key at its point only, a household's
key for its own household only (testing's key bindings)."""

from __future__ import annotations

from sqlalchemy import select

from contracts import roles as r
from contracts.ids import global_id, local_id
from juwei.callers import Caller, Forbidden
from juwei.session import Session
from services.testing.views import key_bindings


def binding_of(session: Session, caller: Caller) -> tuple[str | None, str | None]:
    """(point, household) a key is bound to (district-wide ids), or (None, None)."""
    row = session.execute(
        select(key_bindings.c.point, key_bindings.c.household).where(key_bindings.c.key_id == caller.key_id)
    ).first()
    return (row.point, row.household) if row else (None, None)


def bind_issued(_runtime: object, session: Session, caller: Caller) -> None:
    """A household's key issued over HTTP (``POST /compounds/{c}/keys``) speaks for the household it names, as
    the keys of ``POST /compounds/{c}/households/{h}/keys`` do; a point's key is issued there, naming its point."""
    if caller.role != r.HOUSEHOLD or caller.holder is None or caller.holder.kind != "household":
        return
    bound = session.execute(select(key_bindings.c.key_id).where(key_bindings.c.key_id == caller.key_id)).first()
    if bound is None:  # the same key stored again (a console's retry) keeps its one binding
        session.execute(
            key_bindings.insert().values(
                key_id=caller.key_id, compound=caller.compound, point=None, household=caller.holder.id
            )
        )


def require_point(session: Session, caller: Caller, compound: str, point: str) -> None:
    """Staff act at any point; a sampling volunteer only at the point their key was issued for."""
    caller.require_scope(compound)
    if caller.role in r.STAFF:
        return
    bound, _ = binding_of(session, caller)
    if bound != global_id(compound, point):
        raise Forbidden(f"this key may not act at sampling point {point}")


def volunteer_point(session: Session, caller: Caller, compound: str) -> str | None:
    """The point (local id) a sampling volunteer's key is bound to; None for staff."""
    if caller.role in r.STAFF:
        return None
    bound, _ = binding_of(session, caller)
    if bound is None or not bound.startswith(f"{compound}:"):
        raise Forbidden("this key is not bound to a sampling point of this compound")
    return local_id(bound)


def require_household(session: Session, caller: Caller, compound: str, household: str, building: str) -> None:
    """A household key speaks for its own household; officers for their buildings; staff for all."""
    caller.require_scope(compound, local_id(building))
    if caller.role == r.HOUSEHOLD:
        _, bound = binding_of(session, caller)
        if bound != household:
            raise Forbidden("this key speaks for another household")


def visible_buildings(caller: Caller, compound: str, wanted: str | None) -> set[str] | None:
    """Which buildings (local ids) the caller may see: their key's buildings, narrowed to ``wanted``."""
    caller.require_scope(compound, wanted)
    if wanted is not None:
        return {wanted}
    return set(caller.buildings) if caller.buildings is not None else None
