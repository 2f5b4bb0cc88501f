"""What every notify route needs: the runtime, one command's unit of work, id translation, role sets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import roles as r
from contracts.ids import global_id, local_id
from juwei.aggregate import Aggregate
from juwei.auth import require
from juwei.callers import Caller
from juwei.problems import Problem
from juwei.repository import Repository
from juwei.service import Runtime
from services.notify.views import groups

A = TypeVar("A", bound=Aggregate)

__all__ = ["Anyone", "Command", "Officers", "StaffOnly", "global_id", "local_id", "require_group", "runtime_of"]

StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Officers = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER))]
Anyone = Annotated[
    Caller,
    Depends(
        require(
            *r.STAFF,
            r.INFORMATION_OFFICER,
            r.LOGISTICS_VOLUNTEER,
            r.SAMPLING_VOLUNTEER,
            r.HOUSEHOLD,
            r.SUBDISTRICT_STAFF,
        )
    ),
]


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def require_group(session: Session, compound: str, building: str) -> str:
    """The building's id on the bus, if residents has registered it (its group exists)."""
    target = global_id(compound, building)
    if session.execute(select(groups.c.building).where(groups.c.building == target)).first() is None:
        raise Problem(404, f"building {building} has no group (not registered with residents yet)", "building-unknown")
    return target


class Command:
    """One command's unit of work: load aggregates, decide, save them all in one transaction."""

    def __init__(self, request: Request, caller: Caller, compound: str) -> None:
        self.runtime = runtime_of(request)
        self.caller = caller
        self.compound = compound
        self._session: Session | None = None
        self._loaded: list[tuple[Repository, Aggregate]] = []

    @property
    def session(self) -> Session:
        assert self._session is not None, "use inside `with command.unit()`"
        return self._session

    @contextmanager
    def unit(self) -> Iterator[Command]:
        with self.runtime.database.unit_of_work() as session:
            self._session = session
            yield self
            for repository, aggregate in self._loaded:
                repository.save(session, aggregate, compound=self.compound, actor=self.caller.key_id)
        self._session = None

    def load(self, kind: type[A], local: str | None) -> A:
        """Load an aggregate by its id in this compound (``None``: the compound itself)."""
        repository = Repository(self.runtime.store, kind)
        aggregate = repository.load(self.session, global_id(self.compound, local) if local else self.compound)
        self._loaded.append((repository, aggregate))
        return aggregate
