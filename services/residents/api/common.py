"""What every residents route needs: the runtime, today's date, repositories, id translation, scoping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from contracts.ids import global_id, local_id
from juwei.aggregate import Aggregate, Repository
from juwei.callers import Caller
from juwei.service import Runtime

A = TypeVar("A", bound=Aggregate)

__all__ = ["Command", "global_id", "local_id", "runtime_of", "today_of"]


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def today_of(request: Request) -> date:
    return runtime_of(request).settings.local_today()


class Command:
    """One command's unit of work: load aggregates, decide, save them all in one transaction."""

    def __init__(self, request: Request, caller: Caller, compound: str) -> None:
        self.runtime = runtime_of(request)
        self.caller = caller
        self.compound = compound
        self.today = today_of(request)
        self.session: Session | None = None
        self._loaded: list[tuple[Repository, Aggregate]] = []

    @contextmanager
    def unit(self) -> Iterator[Command]:
        with self.runtime.database.unit_of_work() as session:
            self.session = session
            yield self
            for repository, aggregate in self._loaded:
                repository.save(session, aggregate, compound=self.compound, actor=self.caller.key_id)
        self.session = None

    def load(self, kind: type[A], local: str | None) -> A:
        """Load an aggregate by its id in this compound (``None``: the compound itself)."""
        assert self.session is not None, "load inside `with command.unit()`"
        repository = Repository(self.runtime.store, kind)
        aggregate = repository.load(self.session, global_id(self.compound, local) if local else self.compound)
        self._loaded.append((repository, aggregate))
        return aggregate
