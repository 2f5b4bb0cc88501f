"""Read models of the testing service, rebuilt by ``juwei replay testing``.

``register`` is fed by the residents service's events (through the inbox): who lives on which floor of
which building, and who is bedridden. Every other projection is fed by the service's own events. Ids are
the district-wide ids the events carry (``<compound>:<id>``); times are stored in UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

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
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from juwei.aggregate import DomainRuleViolation
from juwei.events import DomainEvent, Envelope
from juwei.projection import Projection, upsert
from services.residents.events import registry as residents_catalogue
from services.roles import local_id
from services.testing import events as ev
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


def utc(moment: datetime | None) -> datetime | None:
    """UTC, tz-aware: SQLite hands back naive datetimes, and every stored time is UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _types(*classes: type[DomainEvent]) -> frozenset[str]:
    return frozenset(cls.type_name() for cls in classes)


class Register(Projection):
    """Buildings, households and residents as the residents service published them."""

    name = "register"
    tables = (buildings, households, residents)
    types = frozenset(
        f"juwei.residents.{name}.v1"
        for name in (
            "BuildingRegistered",
            "HouseholdRegistered",
            "ResidentRegistered",
            "ResidentMoved",
            "ResidentArrived",
            "ResidentNeedsChanged",
            "ResidentErased",
        )
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = residents_catalogue.decode(envelope.type, envelope.data)
        data = event.model_dump()
        kind = type(event).__name__
        compound = envelope.compound
        if kind == "BuildingRegistered":
            upsert(
                session,
                buildings,
                {"building": data["building"]},
                {"compound": compound, **{k: data[k] for k in ("number", "floors", "lifts", "lift_capacity")}},
            )
        elif kind == "HouseholdRegistered":
            upsert(
                session,
                households,
                {"household": data["household"]},
                {"compound": compound, "building": data["building"], "floor": data["floor"], "room": data["room"]},
            )
        elif kind in ("ResidentRegistered", "ResidentArrived"):
            upsert(
                session,
                residents,
                {"resident": data["resident"]},
                {
                    "compound": compound,
                    "household": data["household"],
                    "building": data["building"],
                    "bedridden": bool(data["bedridden"]),
                    "present": True,
                },
            )
        elif kind == "ResidentMoved":
            session.execute(
                update(residents)
                .where(residents.c.resident == data["resident"])
                .values(household=data["to_household"], building=data["building"])
            )
        elif kind == "ResidentNeedsChanged":
            session.execute(
                update(residents).where(residents.c.resident == data["resident"]).values(bedridden=data["bedridden"])
            )
        elif kind == "ResidentErased":
            session.execute(update(residents).where(residents.c.resident == data["resident"]).values(present=False))


class Points(Projection):
    """Sampling points and the buildings each serves."""

    name = "points"
    tables = (points, point_buildings)
    types = _types(ev.SamplingPointOpened, ev.SamplingPointChanged, ev.SamplingPointClosed, ev.BuildingsAssigned)

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
    types = _types(ev.RoundScheduled, ev.CallPlanMade, ev.UnitCalled, ev.DoorToDoorSamplingAssigned)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, envelope.data)
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
            for visit in event.visits:
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
    types = _types(ev.SampleCollected, ev.TubeResulted, ev.IndividualResultRecorded, ev.AntigenReported)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, envelope.data)
        compound = envelope.compound
        if isinstance(event, ev.SampleCollected):
            session.execute(
                samples.insert().values(
                    round=event.round,
                    resident=event.resident,
                    attempt=event.attempt,
                    compound=compound,
                    tube=event.tube,
                    kind=event.kind,
                    point=event.point,
                    household=event.household,
                    building=event.building,
                    door_to_door=event.door_to_door,
                    collected_at=utc(event.collected_at),
                )
            )
            self._status(
                session,
                compound,
                event.round,
                event.resident,
                event.household,
                event.building,
                "SampleCollected",
                None,
                event.collected_at,
            )
            upsert(
                session,
                tubes,
                {"tube": event.tube},
                {
                    "compound": compound,
                    "round": event.round,
                    "kind": event.kind,
                    "point": event.point,
                    "samples": _count_in_tube(session, event.tube),
                    "result": None,
                    "resulted_at": None,
                },
            )
        elif isinstance(event, ev.TubeResulted):
            session.execute(
                update(tubes)
                .where(tubes.c.tube == event.tube)
                .values(result=event.result, resulted_at=utc(event.resulted_at))
            )
            rows = session.execute(
                select(samples.c.resident, samples.c.household, samples.c.building).where(samples.c.tube == event.tube)
            ).all()
            for resident, household, building in rows:
                self._status(
                    session,
                    compound,
                    event.round,
                    resident,
                    household,
                    building,
                    "TubeResulted",
                    event.result,
                    event.resulted_at,
                )
        elif isinstance(event, ev.IndividualResultRecorded):
            session.execute(
                update(tubes)
                .where(tubes.c.tube == event.tube)
                .values(result=event.result, resulted_at=utc(event.resulted_at))
            )
            self._status(
                session,
                compound,
                event.round,
                event.resident,
                event.household,
                event.building,
                "IndividualResultRecorded",
                event.result,
                event.resulted_at,
            )
        elif isinstance(event, ev.AntigenReported):
            upsert(
                session,
                antigen,
                {"round": event.round, "resident": event.resident},
                {
                    "compound": compound,
                    "household": event.household,
                    "building": event.building,
                    "result": event.result,
                    "photo": event.photo,
                    "reported_at": utc(event.reported_at),
                },
            )
            self._status(
                session,
                compound,
                event.round,
                event.resident,
                event.household,
                event.building,
                "AntigenReported",
                event.result,
                event.reported_at,
            )

    @staticmethod
    def _status(
        session: Session,
        compound: str,
        round: str,
        resident: str,
        household: str,
        building: str,
        kind: str,
        result: str | None,
        at: datetime,
    ) -> None:
        current = session.execute(
            select(round_residents.c.status).where(
                round_residents.c["round"] == round, round_residents.c.resident == resident
            )
        ).scalar()
        upsert(
            session,
            round_residents,
            {"round": round, "resident": resident},
            {
                "compound": compound,
                "household": household,
                "building": building,
                "status": status_after(current, kind, result),
                "updated_at": utc(at),
            },
        )


def _count_in_tube(session: Session, tube: str) -> int:
    return int(session.execute(select(func.count()).where(samples.c.tube == tube)).scalar() or 0)


class Cases(Projection):
    """Cases, their transfers and the close contacts in home isolation."""

    name = "cases"
    tables = (cases, close_contacts)
    types = _types(ev.CaseConfirmed, ev.CloseContactsIsolated, ev.TransferScheduled, ev.CaseTransferred, ev.CaseClosed)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, envelope.data)
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
            for resident in event.residents:
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
    types = _types(ev.DisinfectionRecorded)

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
    return [Register(), Points(), Rounds(), Results(), Cases(), Disinfections()]


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
        raise DomainRuleViolation(f"sampling points {', '.join(closed)} are not open", code="point-closed")
    served: dict[str, list[str]] = {}
    for point, building in session.execute(
        select(point_buildings.c.point, point_buildings.c.building).where(point_buildings.c.compound == compound)
    ):
        served.setdefault(point, []).append(building)
    return [PointCapacity(p, rows[p].throughput, tuple(served.get(p, ()))) for p in chosen]
