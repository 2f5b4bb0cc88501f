"""Read models of the testing service, rebuilt by ``juwei replay testing``.

``register`` is fed by the residents service's events (through the inbox): who lives on which floor of
which building, and who is bedridden. Every other projection is fed by the service's own events. Ids are
the district-wide ids the events carry (``<compound>:<id>``); times are stored in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from contracts import testing as ev
from contracts.access import Departures
from contracts.ids import local_id
from contracts.residents import (
    BuildingRegistered,
    HouseholdRegistered,
    ResidentArrived,
    ResidentErased,
    ResidentMoved,
    ResidentNeedsChanged,
    ResidentRegistered,
    VolunteerEnlisted,
    VolunteerStoodDown,
)
from contracts.residents import registry as residents_catalogue
from juwei.aggregate import Conflict
from juwei.events import Envelope, parse_time
from juwei.projection import Projection, upsert, write_many
from services.testing.domain import BuildingLayout, Occupant, PointCapacity, status_after

tables = MetaData()
Id = String(100)

# --- who lives where (from juwei.residents) ----------------------------------------------------------------
buildings = Table(
    "tst_buildings",
    tables,
    Column("building", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("number", String(40), nullable=False),
    Column("floors", Integer, nullable=False),
    Column("lifts", Integer, nullable=False),
    Column("lift_capacity", Integer, nullable=False),
)
households = Table(
    "tst_households",
    tables,
    Column("household", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", Id, nullable=False, index=True),
    Column("floor", Integer, nullable=False),
    Column("room", Integer, nullable=False),
)
residents = Table(
    "tst_residents",
    tables,
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("household", Id, nullable=False, index=True),
    Column("building", Id, nullable=False, index=True),
    Column("bedridden", Boolean, nullable=False),
    Column("present", Boolean, nullable=False),  # false once erased from the register
)
# Volunteers serving the compound (from juwei.residents): a point's key may be issued to one of them.
volunteers = Table(
    "tst_volunteers",
    tables,
    Column("volunteer", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", Id, nullable=False),
    Column("serving", Boolean, nullable=False),
)

# --- sampling points ---------------------------------------------------------------------------------------
points = Table(
    "tst_points",
    tables,
    Column("point", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("location", String(200), nullable=False),
    Column("throughput", Float, nullable=False),
    Column("volunteers", Text, nullable=False),
    Column("open", Boolean, nullable=False),
)
point_buildings = Table(
    "tst_point_buildings",
    tables,
    Column("building", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("point", Id, nullable=False, index=True),
    Column("proposed", Boolean, nullable=False),
)

# --- rounds, plans and calls -------------------------------------------------------------------------------
rounds = Table(
    "tst_rounds",
    tables,
    Column("round", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("kind", String(10), nullable=False),
    Column("on", Date, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("points", Text, nullable=False),
    Column("rules", Text, nullable=False),
    Column("pool_size", Integer, nullable=False),
    Column("auto_advance", Boolean, nullable=False),
)
plans = Table(
    "tst_plans",
    tables,
    Column("round", Id, primary_key=True),
    Column("point", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("mode", String(20), nullable=False),
    Column("queue_limit", Integer, nullable=False),
    Column("peak_queue", Integer, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("called", Integer, nullable=False),
)
calls = Table(
    "tst_calls",
    tables,
    Column("round", Id, primary_key=True),
    Column("point", Id, primary_key=True),
    Column("call", Integer, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("building", Id, nullable=False),
    Column("lowest_floor", Integer, nullable=False),
    Column("highest_floor", Integer, nullable=False),
    Column("people", Integer, nullable=False),
    Column("lift_riders", Integer, nullable=False),
    Column("rooms", Text, nullable=False),  # JSON list; empty: every room of the floors
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("called_at", DateTime(timezone=True), nullable=True),
    Column("called_by", String(20), nullable=True),
)
Index("ix_tst_calls_round_building", calls.c["round"], calls.c.building)
door_to_door = Table(
    "tst_door_to_door",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("floor", Integer, nullable=False),
)

# --- samples, tubes, results -------------------------------------------------------------------------------
samples = Table(
    "tst_samples",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    # The primary key is the backstop against two volunteers taking the same resident's sample at once.
    Column("attempt", Integer, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("tube", Id, nullable=False, index=True),
    Column("kind", String(12), nullable=False),
    Column("point", Id, nullable=True),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("door_to_door", Boolean, nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
)
round_residents = Table(
    "tst_round_residents",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("status", String(24), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_tst_round_residents_round_building", round_residents.c["round"], round_residents.c.building)
tubes = Table(
    "tst_tubes",
    tables,
    Column("tube", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("round", Id, nullable=False, index=True),
    Column("kind", String(12), nullable=False),
    Column("point", Id, nullable=True),
    Column("samples", Integer, nullable=False),
    Column("result", String(10), nullable=True),
    Column("resulted_at", DateTime(timezone=True), nullable=True),
)
antigen = Table(
    "tst_antigen",
    tables,
    Column("round", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False, index=True),
    Column("building", Id, nullable=False),
    Column("result", String(10), nullable=False),
    Column("photo", String(64), nullable=True),
    Column("reported_at", DateTime(timezone=True), nullable=False),
)

# --- cases, close contacts, disinfection -------------------------------------------------------------------
cases = Table(
    "tst_cases",
    tables,
    Column("case", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("resident", Id, nullable=False, index=True),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("confirmed_on", Date, nullable=False),
    Column("scheduled_at", DateTime(timezone=True), nullable=True),
    Column("transferred_at", DateTime(timezone=True), nullable=True),
    Column("facility", String(200), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(12), nullable=True),
)
close_contacts = Table(
    "tst_close_contacts",
    tables,
    Column("case", Id, primary_key=True),
    Column("resident", Id, primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("household", Id, nullable=False),
    Column("building", Id, nullable=False),
    Column("since", Date, nullable=False),
)
disinfections = Table(
    "tst_disinfections",
    tables,
    Column("disinfection", Id, primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", Id, nullable=False, index=True),
    Column("done_at", DateTime(timezone=True), nullable=False),
    Column("areas", Text, nullable=False),
    Column("photos", Text, nullable=False),
    Column("case", Id, nullable=True),
)

# Not a projection: which point a sampling volunteer's key works at, which household a household's key
# speaks for (API keys carry a role, a compound and buildings only). Never rebuilt, never cleared.
key_bindings = Table(
    "tst_key_bindings",
    tables,
    Column("key_id", String(32), primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("point", Id, nullable=True),
    Column("household", Id, nullable=True),
)


def point_of(session: Session, caller: Any) -> str | None:
    """The sampling point (district-wide id) a key was issued for, if any: the feed's scope of its volunteers."""
    return session.execute(select(key_bindings.c.point).where(key_bindings.c.key_id == caller.key_id)).scalar()


def utc(moment: datetime | None) -> datetime | None:
    """UTC, tz-aware: SQLite hands back naive datetimes, and every stored time is UTC."""
    if moment is None:
        return None
    if moment.tzinfo is UTC:  # parse_time's "Z": nothing to convert (astimezone is a call per row)
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_BULK_UPSERTS: dict[tuple[str, str], Any] = {}


def bulk_upsert(session: Session, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or update every other column where the key exists: one executemany for a whole run.

    ``keys`` is the table's primary key and every row carries every column (the statement is built once per
    dialect and table, as ``juwei.projection.upsert`` does for a single row).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement = _BULK_UPSERTS.get((dialect, table.name))
    if statement is None:
        proposed = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
        others = [column.name for column in table.columns if column.name not in keys]
        statement = _BULK_UPSERTS[(dialect, table.name)] = proposed.on_conflict_do_update(
            index_elements=list(keys), set_={name: proposed.excluded[name] for name in others}
        )
    write_many(session, statement, rows)


def _own(envelope: Envelope) -> dict[str, Any]:
    """An own event's payload with its private part: the health data testing keeps to itself."""
    return {**envelope.data, **envelope.private} if envelope.private else envelope.data


class Register(Projection):
    """Buildings, households and residents as the residents service published them."""

    name = "register"
    tables = (buildings, households, residents)
    reads = (
        BuildingRegistered,
        HouseholdRegistered,
        ResidentRegistered,
        ResidentMoved,
        ResidentArrived,
        ResidentNeedsChanged,
        ResidentErased,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """Rows kept in memory for the run (the last event about a row wins), then one executemany per shape.

        Reads the payloads as they came (``EventRegistry.trusted``): live, the runtime has already checked
        each against residents' catalogue (``Runtime.handle_received``), so one that breaks it never gets here.
        """
        built: dict[str, dict[str, Any]] = {}
        homes: dict[str, dict[str, Any]] = {}
        people: dict[str, dict[str, Any]] = {}
        changed: dict[str, dict[str, Any]] = {}  # residents registered before this run: only some columns change
        classes = residents_catalogue.classes
        for envelope in envelopes:
            # The bedridden flag comes opened from its seal in ``private`` (testing holds the keys handed over)
            # or, in events written before it was sealed, in clear; a shredded seal reads as not bedridden.
            type_name, data = residents_catalogue.trusted(envelope.type, _own(envelope))
            kind = classes[type_name].__name__
            compound = envelope.compound
            if kind == "BuildingRegistered":
                built[data["building"]] = {
                    "building": data["building"],
                    "compound": compound,
                    **{k: data[k] for k in ("number", "floors", "lifts", "lift_capacity")},
                }
            elif kind == "HouseholdRegistered":
                homes[data["household"]] = {
                    "household": data["household"],
                    "compound": compound,
                    "building": data["building"],
                    "floor": data["floor"],
                    "room": data["room"],
                }
            elif kind in ("ResidentRegistered", "ResidentArrived"):
                changed.pop(data["resident"], None)  # the upsert sets every column
                people[data["resident"]] = {
                    "resident": data["resident"],
                    "compound": compound,
                    "household": data["household"],
                    "building": data["building"],
                    "bedridden": bool(data["bedridden"]),
                    "present": True,
                }
            else:
                if kind == "ResidentMoved":
                    values = {"household": data["to_household"], "building": data["building"]}
                elif kind == "ResidentNeedsChanged":
                    values = {"bedridden": bool(data["bedridden"])}
                else:
                    values = {"present": False}
                row = people.get(data["resident"])
                if row is not None:
                    row.update(values)
                else:
                    changed.setdefault(data["resident"], {}).update(values)
        bulk_upsert(session, buildings, ("building",), list(built.values()))
        bulk_upsert(session, households, ("household",), list(homes.values()))
        bulk_upsert(session, residents, ("resident",), list(people.values()))
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for resident, values in changed.items():
            shapes.setdefault(tuple(sorted(values)), []).append({"b_resident": resident, **values})
        for shape, rows in shapes.items():
            write_many(session, _resident_update(shape), rows)


_RESIDENT_UPDATES: dict[tuple[str, ...], Any] = {}


def _resident_update(columns: tuple[str, ...]) -> Any:
    """UPDATE tst_residents SET <columns> WHERE resident = :b_resident, built once per set of columns."""
    statement = _RESIDENT_UPDATES.get(columns)
    if statement is None:
        statement = _RESIDENT_UPDATES[columns] = (
            update(residents)
            .where(residents.c.resident == bindparam("b_resident"))
            .values({name: bindparam(name) for name in columns})
        )
    return statement


class Volunteers(Projection):
    """Who volunteers in the compound and still serves (a stood-down volunteer is kept, not serving)."""

    name = "volunteers"
    tables = (volunteers,)
    reads = (VolunteerEnlisted, VolunteerStoodDown)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = envelope.data
        serving = envelope.type.split(".")[2] == "VolunteerEnlisted"
        upsert(
            session,
            volunteers,
            {"volunteer": data["volunteer"]},
            {"compound": envelope.compound, "building": data["building"], "serving": serving},
        )


class Points(Projection):
    """Sampling points and the buildings each serves."""

    name = "points"
    tables = (points, point_buildings)
    reads = (ev.SamplingPointOpened, ev.SamplingPointChanged, ev.SamplingPointClosed, ev.BuildingsAssigned)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, envelope.data)
        if isinstance(event, ev.SamplingPointOpened | ev.SamplingPointChanged):
            upsert(
                session,
                points,
                {"point": event.point},
                {
                    "compound": envelope.compound,
                    "name": event.name,
                    "location": event.location,
                    "throughput": event.throughput,
                    "volunteers": json.dumps(event.volunteers),
                    "open": True,
                },
            )
        elif isinstance(event, ev.SamplingPointClosed):
            session.execute(update(points).where(points.c.point == event.point).values(open=False))
        elif isinstance(event, ev.BuildingsAssigned):
            session.execute(delete(point_buildings).where(point_buildings.c.point == event.point))
            for building in event.buildings:
                session.execute(delete(point_buildings).where(point_buildings.c.building == building))
                session.execute(
                    point_buildings.insert().values(
                        building=building, compound=envelope.compound, point=event.point, proposed=event.proposed
                    )
                )


class Rounds(Projection):
    """Rounds, each point's timetable and how far its calls have got, door-to-door lists."""

    name = "rounds"
    tables = (rounds, plans, calls, door_to_door)
    reads = (ev.RoundScheduled, ev.CallPlanMade, ev.UnitCalled, ev.DoorToDoorSamplingAssigned)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, _own(envelope))
        compound = envelope.compound
        if isinstance(event, ev.RoundScheduled):
            rules = event.model_dump(
                mode="json",
                include={
                    "mode",
                    "floors_per_call",
                    "floor_order",
                    "slot_minutes",
                    "window_minutes",
                    "lift_trip_minutes",
                    "walk_floors",
                },
            )
            upsert(
                session,
                rounds,
                {"round": event.round},
                {
                    "compound": compound,
                    "kind": event.kind,
                    "on": event.on,
                    "starts_at": utc(event.starts_at),
                    "points": json.dumps(event.points),
                    "rules": json.dumps(rules),
                    "pool_size": event.pool_size,
                    "auto_advance": event.auto_advance,
                },
            )
        elif isinstance(event, ev.CallPlanMade):
            session.execute(delete(calls).where(calls.c["round"] == event.round, calls.c.point == event.point))
            if event.calls:
                session.execute(
                    calls.insert(),
                    [
                        {
                            "round": event.round,
                            "point": event.point,
                            "call": call.call,
                            "compound": compound,
                            "building": call.building,
                            "lowest_floor": call.lowest_floor,
                            "highest_floor": call.highest_floor,
                            "people": call.people,
                            "lift_riders": call.lift_riders,
                            "rooms": json.dumps(call.rooms),
                            "starts_at": utc(call.starts_at),
                            "ends_at": utc(call.ends_at),
                            "called_at": None,
                            "called_by": None,
                        }
                        for call in event.calls
                    ],
                )
            upsert(
                session,
                plans,
                {"round": event.round, "point": event.point},
                {
                    "compound": compound,
                    "mode": event.mode,
                    "queue_limit": event.queue_limit,
                    "peak_queue": event.peak_queue,
                    "calls": len(event.calls),
                    "called": 0,
                },
            )
        elif isinstance(event, ev.UnitCalled):
            session.execute(
                update(calls)
                .where(calls.c["round"] == event.round, calls.c.point == event.point, calls.c.call == event.call)
                .values(called_at=utc(event.called_at), called_by=event.called_by)
            )
            session.execute(
                update(plans)
                .where(plans.c["round"] == event.round, plans.c.point == event.point)
                .values(called=event.call)
            )
        elif isinstance(event, ev.DoorToDoorSamplingAssigned):
            session.execute(
                delete(door_to_door).where(
                    door_to_door.c["round"] == event.round, door_to_door.c.building == event.building
                )
            )
            for visit in event.visits or ():
                session.execute(
                    door_to_door.insert().values(
                        round=event.round,
                        resident=visit.resident,
                        compound=compound,
                        household=visit.household,
                        building=event.building,
                        floor=visit.floor,
                    )
                )


class Results(Projection):
    """Samples, tubes, antigen self-reports and each resident's status in each round."""

    name = "results"
    tables = (samples, round_residents, tubes, antigen)
    reads = (ev.SampleCollected, ev.TubeResulted, ev.IndividualResultRecorded, ev.AntigenReported)

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """Set-based: what the run needs is read once, statuses, tubes and counts change in memory, written once.

        The rows equal those of applying the events one by one (each sample an INSERT, each status read and
        upserted, each tube's samples counted): the tests rebuild full rounds both ways and compare. It reads
        the payloads as they were appended (``EventRegistry.trusted``: own events, validated when appended).
        """
        classes = ev.registry.classes
        run_events: list[tuple[str, str, dict[str, Any]]] = []
        for envelope in envelopes:
            type_name, data = ev.registry.trusted(envelope.type, _own(envelope))
            run_events.append((envelope.compound, classes[type_name].__name__, data))
        run = _ResultsRun(session, run_events)
        for compound, kind, data in run_events:
            if kind == "SampleCollected":
                run.sampled(compound, data)
            elif kind == "TubeResulted":
                at = parse_time(data["resulted_at"])
                run.tube_result(data["tube"], data["result"], at)
                for resident, household, building in run.tube_samples.get(data["tube"], ()):
                    run.status(compound, data["round"], resident, household, building, kind, data["result"], at)
            elif kind == "IndividualResultRecorded":
                at = parse_time(data["resulted_at"])
                run.tube_result(data["tube"], data["result"], at)
                run.status(
                    compound,
                    data["round"],
                    data["resident"],
                    data["household"],
                    data["building"],
                    kind,
                    data["result"],
                    at,
                )
            elif kind == "AntigenReported":
                at = parse_time(data["reported_at"])
                run.antigen[(data["round"], data["resident"])] = {
                    "round": data["round"],
                    "resident": data["resident"],
                    "compound": compound,
                    "household": data["household"],
                    "building": data["building"],
                    "result": data["result"],
                    "photo": data["photo"],
                    "reported_at": utc(at),
                }
                run.status(
                    compound,
                    data["round"],
                    data["resident"],
                    data["household"],
                    data["building"],
                    kind,
                    data["result"],
                    at,
                )
        run.write()


_IN_CHUNK = 500  # ids per IN (…): well under SQLite's bound-parameter limit
_INSERT_SAMPLES = samples.insert()
_TUBE_RESULT = (
    update(tubes)
    .where(tubes.c.tube == bindparam("b_tube"))
    .values(result=bindparam("b_result"), resulted_at=bindparam("b_resulted_at"))
)
_SAMPLES_OF_TUBES = select(samples.c.tube, samples.c.resident, samples.c.household, samples.c.building).where(
    samples.c.tube.in_(bindparam("tubes", expanding=True))
)
_COUNTS_OF_TUBES = (
    select(samples.c.tube, func.count())
    .where(samples.c.tube.in_(bindparam("tubes", expanding=True)))
    .group_by(samples.c.tube)
)
_STATUSES = select(round_residents.c.resident, round_residents.c.status).where(
    round_residents.c["round"] == bindparam("round"),
    round_residents.c.resident.in_(bindparam("people", expanding=True)),
)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


class _ResultsRun:
    """One run of result events: the rows they touch, read before and written after."""

    def __init__(self, session: Session, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        """``events``: (compound, event class name, payload) of the run, in order."""
        self.session = session
        self.samples: list[dict[str, Any]] = []
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}
        self.tubes: dict[str, dict[str, Any]] = {}  # tubes sampled in the run: whole rows
        self.results: dict[str, dict[str, Any]] = {}  # tubes sampled before the run: only the result changes
        self.antigen: dict[tuple[str, str], dict[str, Any]] = {}
        sampled = list(dict.fromkeys(data["tube"] for _c, kind, data in events if kind == "SampleCollected"))
        resulted = list(dict.fromkeys(data["tube"] for _c, kind, data in events if kind == "TubeResulted"))
        people: dict[str, set[str]] = {}
        for _compound, kind, data in events:
            concerned = data["residents"] if kind == "TubeResulted" else (data["resident"],)
            people.setdefault(data["round"], set()).update(concerned)
        # Read before anything of the run is written: what follows is kept in memory on top of it.
        self.counts: dict[str, int] = {}
        for chunk in _chunks(sampled):
            for tube, count in session.execute(_COUNTS_OF_TUBES, {"tubes": chunk}):
                self.counts[tube] = int(count)
        self.tube_samples: dict[str, list[tuple[str, str, str]]] = {}
        for chunk in _chunks(resulted):
            for tube, resident, household, building in session.execute(_SAMPLES_OF_TUBES, {"tubes": chunk}):
                self.tube_samples.setdefault(tube, []).append((resident, household, building))
        self.current: dict[tuple[str, str], str] = {}
        for round_id, residents_of_round in people.items():
            for chunk in _chunks(sorted(residents_of_round)):
                for resident, status in session.execute(_STATUSES, {"round": round_id, "people": chunk}):
                    self.current[(round_id, resident)] = status

    def sampled(self, compound: str, data: dict[str, Any]) -> None:
        tube, resident, household, building = data["tube"], data["resident"], data["household"], data["building"]
        at = parse_time(data["collected_at"])
        self.samples.append(
            {
                "round": data["round"],
                "resident": resident,
                "attempt": data["attempt"],
                "compound": compound,
                "tube": tube,
                "kind": data["kind"],
                "point": data["point"],
                "household": household,
                "building": building,
                "door_to_door": data["door_to_door"],
                "collected_at": utc(at),
            }
        )
        self.tube_samples.setdefault(tube, []).append((resident, household, building))
        self.status(compound, data["round"], resident, household, building, "SampleCollected", None, at)
        self.counts[tube] = self.counts.get(tube, 0) + 1
        self.results.pop(tube, None)  # the tube's upsert clears the result anyway
        self.tubes[tube] = {
            "tube": tube,
            "compound": compound,
            "round": data["round"],
            "kind": data["kind"],
            "point": data["point"],
            "samples": self.counts[tube],
            "result": None,
            "resulted_at": None,
        }

    def tube_result(self, tube: str, result: str, at: datetime) -> None:
        row = self.tubes.get(tube)
        if row is not None:
            row.update(result=result, resulted_at=utc(at))
        else:
            self.results[tube] = {"b_tube": tube, "b_result": result, "b_resulted_at": utc(at)}

    def status(
        self,
        compound: str,
        round: str,
        resident: str,
        household: str,
        building: str,
        kind: str,
        result: str | None,
        at: datetime,
    ) -> None:
        key = (round, resident)
        status = status_after(self.current.get(key), kind, result)
        self.current[key] = status  # type: ignore[assignment]
        self.statuses[key] = {
            "round": round,
            "resident": resident,
            "compound": compound,
            "household": household,
            "building": building,
            "status": status,
            "updated_at": utc(at),
        }

    def write(self) -> None:
        if self.samples:
            write_many(self.session, _INSERT_SAMPLES, self.samples)
        bulk_upsert(self.session, round_residents, ("round", "resident"), list(self.statuses.values()))
        bulk_upsert(self.session, tubes, ("tube",), list(self.tubes.values()))
        if self.results:
            write_many(self.session, _TUBE_RESULT, list(self.results.values()))
        bulk_upsert(self.session, antigen, ("round", "resident"), list(self.antigen.values()))


class Cases(Projection):
    """Cases, their transfers and the close contacts in home isolation."""

    name = "cases"
    tables = (cases, close_contacts)
    reads = (ev.CaseConfirmed, ev.CloseContactsIsolated, ev.TransferScheduled, ev.CaseTransferred, ev.CaseClosed)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, _own(envelope))
        if isinstance(event, ev.CaseConfirmed):
            upsert(
                session,
                cases,
                {"case": event.case},
                {
                    "compound": envelope.compound,
                    "resident": event.resident,
                    "household": event.household,
                    "building": event.building,
                    "status": "confirmed",
                    "confirmed_on": event.confirmed_on,
                    "scheduled_at": None,
                    "transferred_at": None,
                    "facility": None,
                    "closed_at": None,
                    "outcome": None,
                },
            )
        elif isinstance(event, ev.CloseContactsIsolated):
            for resident in event.residents or ():
                upsert(
                    session,
                    close_contacts,
                    {"case": event.case, "resident": resident},
                    {
                        "compound": envelope.compound,
                        "household": event.household,
                        "building": event.building,
                        "since": event.since,
                    },
                )
        elif isinstance(event, ev.TransferScheduled):
            session.execute(
                update(cases)
                .where(cases.c.case == event.case)
                .values(status="transfer-scheduled", scheduled_at=utc(event.scheduled_at))
            )
        elif isinstance(event, ev.CaseTransferred):
            session.execute(
                update(cases)
                .where(cases.c.case == event.case)
                .values(status="transferred", transferred_at=utc(event.transferred_at), facility=event.facility)
            )
        elif isinstance(event, ev.CaseClosed):
            session.execute(
                update(cases)
                .where(cases.c.case == event.case)
                .values(status="closed", closed_at=utc(event.closed_at), outcome=event.outcome)
            )


class Disinfections(Projection):
    """Disinfection records for the building board."""

    name = "disinfections"
    tables = (disinfections,)
    reads = (ev.DisinfectionRecorded,)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, envelope.data)
        assert isinstance(event, ev.DisinfectionRecorded)
        upsert(
            session,
            disinfections,
            {"disinfection": event.disinfection},
            {
                "compound": envelope.compound,
                "building": event.building,
                "done_at": utc(event.done_at),
                "areas": json.dumps(event.areas, ensure_ascii=False),
                "photos": json.dumps([p.model_dump() for p in event.photos]),
                "case": event.case,
            },
        )


def projections() -> list[Projection]:
    return [Register(), Volunteers(), Points(), Rounds(), Results(), Cases(), Disinfections(), Departures()]


def layouts_of(session: Session, compound: str) -> list[BuildingLayout]:
    """Every building of the compound with who lives on which floor, as the planner needs it."""
    people: dict[str, list[Occupant]] = {}
    rows = session.execute(
        select(
            residents.c.resident,
            residents.c.household,
            residents.c.building,
            residents.c.bedridden,
            households.c.floor,
            households.c.room,
        )
        .join(households, households.c.household == residents.c.household)
        .where(residents.c.compound == compound, residents.c.present.is_(True))
    )
    for resident, household, building, bedridden, floor, room in rows:
        people.setdefault(building, []).append(Occupant(resident, household, floor, bool(bedridden), room))
    return [
        BuildingLayout(
            building=row.building,
            floors=row.floors,
            lifts=row.lifts,
            lift_capacity=row.lift_capacity,
            occupants=tuple(people.get(row.building, ())),
        )
        for row in session.execute(select(buildings).where(buildings.c.compound == compound))
    ]


def capacities_of(session: Session, compound: str, chosen: list[str]) -> list[PointCapacity]:
    """The round's points with their throughput and the buildings each serves; a closed point is refused."""
    rows = {
        row.point: row
        for row in session.execute(select(points).where(points.c.compound == compound, points.c.point.in_(chosen)))
    }
    closed = [local_id(p) for p in chosen if p not in rows or not rows[p].open]
    if closed:
        raise Conflict(f"sampling points {', '.join(closed)} are not open", code="point-closed")
    served: dict[str, list[str]] = {}
    for point, building in session.execute(
        select(point_buildings.c.point, point_buildings.c.building).where(point_buildings.c.compound == compound)
    ):
        served.setdefault(point, []).append(building)
    return [PointCapacity(p, rows[p].throughput, tuple(served.get(p, ()))) for p in chosen]
