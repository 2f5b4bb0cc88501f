"""What every testing route needs: the runtime, clocks, the unit of work, id translation, key bindings."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from pydantic import Field
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts import roles as r
from contracts.ids import global_id, local_id
from juwei.aggregate import Aggregate
from juwei.callers import Caller
from juwei.events import utcnow
from juwei.problems import Problem
from juwei.repository import Repository
from juwei.service import Runtime
from juwei.store import events_table
from services.testing.photos import PhotoAlbum
from services.testing.views import key_bindings, utc

A = TypeVar("A", bound=Aggregate)

__all__ = ["Command", "LocalIdText", "global_id", "local_id", "runtime_of", "today_of"]

# An id inside a compound, as the API speaks it (the same pattern as path ids).
LocalIdText = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]
# Every event of the named streams, stream by stream in version order: many aggregates in one read.
_STREAMS = (
    select(events_table.c.stream_id, events_table.c.type, events_table.c.data, events_table.c.private)
    .where(events_table.c.stream_id.in_(bindparam("streams", expanding=True)))
    .order_by(events_table.c.stream_id, events_table.c.version)
)


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def today_of(request: Request) -> date:
    return runtime_of(request).settings.local_today()


def zone_of(request: Request) -> ZoneInfo:
    return ZoneInfo(runtime_of(request).settings.timezone)


def local_time(request: Request, moment: datetime) -> datetime:
    """A time without an offset is the compound's wall-clock time (Asia/Shanghai unless configured)."""
    return moment.replace(tzinfo=zone_of(request)) if moment.tzinfo is None else moment


def shown(request: Request, moment: datetime | None) -> str | None:
    """Times go out in the compound's time zone: that is the clock residents read."""
    if moment is None:
        return None
    aware = utc(moment)
    assert aware is not None
    return aware.astimezone(zone_of(request)).isoformat()


def now() -> datetime:
    return utcnow()


def album_of(request: Request) -> PhotoAlbum:
    """Photos live under the service's data dir (``JUWEI_DATA_DIR``)."""
    return PhotoAlbum(runtime_of(request).settings.data_dir)


class Command:
    """One command's unit of work: load aggregates, decide, save them all in one transaction."""

    def __init__(self, request: Request, caller: Caller, compound: str) -> None:
        self.runtime = runtime_of(request)
        self.caller = caller
        self.compound = compound
        self.session: Session | None = None
        self._loaded: list[tuple[Repository, Aggregate]] = []
        self._batched: list[Aggregate] = []

    @contextmanager
    def unit(self) -> Iterator[Command]:
        try:
            with self.runtime.database.unit_of_work() as session:
                self.session = session
                yield self
                for repository, aggregate in self._loaded:
                    repository.save(session, aggregate, compound=self.compound, actor=self.caller.key_id)
                self._save_batched(session)
        except IntegrityError as exc:
            # Two people recorded the same thing at the same moment; the loser is told to reload.
            raise Problem(409, "someone recorded this at the same moment; reload and try again", "conflict") from exc
        finally:
            self.session = None
            self._loaded.clear()
            self._batched.clear()

    def load(self, kind: type[A], id: str) -> A:
        """Load an aggregate by its district-wide id."""
        assert self.session is not None, "load inside `with command.unit()`"
        repository = Repository(self.runtime.store, kind)
        aggregate = repository.load(self.session, id)
        self._loaded.append((repository, aggregate))
        return aggregate

    def load_many(self, kind: type[A], ids: Sequence[str]) -> dict[str, A]:
        """Many aggregates of one kind read at once, saved at the end with one ``append_many``: all or nothing."""
        assert self.session is not None, "load inside `with command.unit()`"
        assert not kind.snapshot_every, "load_many replays whole streams"
        found = {id: kind(id) for id in dict.fromkeys(ids)}
        by_stream = {kind.stream_id(id): aggregate for id, aggregate in found.items()}
        registry = self.runtime.store.registry
        streams = list(by_stream)
        # Core on the transaction's connection: Session.execute's ORM path cost more than the query itself.
        connection = self.session.connection()
        for start in range(0, len(streams), 500):  # IN lists far below every parameter limit
            for stream_id, type_name, data, private in connection.execute(
                _STREAMS, {"streams": streams[start : start + 500]}
            ):
                fields = {**json.loads(data), **json.loads(private)} if private else json.loads(data)
                by_stream[stream_id].replay([registry.decode(type_name, fields)])
        self._batched.extend(found.values())
        return found

    def create(self, kind: type[A], id: str) -> A:
        """An aggregate whose id was just drawn (no stream can hold it yet): nothing to read, saved in the batch.

        Its stream must be empty when saved (expected version 0): a clash is a 409 like any other conflict.
        """
        assert self.session is not None, "create inside `with command.unit()`"
        assert not kind.snapshot_every, "created aggregates are saved with the batch"
        aggregate = kind(id)
        self._batched.append(aggregate)
        return aggregate

    def _save_batched(self, session: Session) -> None:
        pending = [aggregate for aggregate in self._batched if aggregate.pending()]
        if not pending:
            return
        self.runtime.store.append_many(
            session,
            [(type(a).stream_id(a.id), a.pending(), a.version, self.compound) for a in pending],
            actor=self.caller.key_id,
        )
        for aggregate in pending:
            aggregate.mark_saved()


def binding_of(session: Session, caller: Caller) -> tuple[str | None, str | None]:
    """(point, household) a key is bound to (district-wide ids), or (None, None)."""
    row = session.execute(
        select(key_bindings.c.point, key_bindings.c.household).where(key_bindings.c.key_id == caller.key_id)
    ).first()
    return (row.point, row.household) if row else (None, None)


def require_point(session: Session, caller: Caller, compound: str, point: str) -> None:
    """Staff act at any point; a sampling volunteer only at the point their key was issued for."""
    caller.require_scope(compound)
    if caller.role in r.STAFF:
        return
    bound, _ = binding_of(session, caller)
    if bound != global_id(compound, point):
        raise HTTPException(status_code=403, detail=f"this key may not act at sampling point {point}")


def volunteer_point(session: Session, caller: Caller, compound: str) -> str | None:
    """The point (local id) a sampling volunteer's key is bound to; None for staff."""
    if caller.role in r.STAFF:
        return None
    bound, _ = binding_of(session, caller)
    if bound is None or not bound.startswith(f"{compound}:"):
        raise HTTPException(status_code=403, detail="this key is not bound to a sampling point of this compound")
    return local_id(bound)


def require_household(session: Session, caller: Caller, compound: str, household: str, building: str) -> None:
    """A household key speaks for its own household; officers for their buildings; staff for all."""
    caller.require_scope(compound, local_id(building))
    if caller.role == r.HOUSEHOLD:
        _, bound = binding_of(session, caller)
        if bound != household:
            raise HTTPException(status_code=403, detail="this key speaks for another household")


def visible_buildings(caller: Caller, compound: str, wanted: str | None) -> set[str] | None:
    """Which buildings (local ids) the caller may see: their key's buildings, narrowed to ``wanted``."""
    caller.require_scope(compound, wanted)
    if wanted is not None:
        return {wanted}
    return set(caller.buildings) if caller.buildings is not None else None
