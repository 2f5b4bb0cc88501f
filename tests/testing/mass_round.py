"""A mass PCR round run the way the compound runs it, through the testing service's API.

Shared by the integration test and ``bench/testing_round.py``: residents' events go onto the real
``juwei.residents`` topic, testing's consumer builds its register from them, then six points are opened,
buildings assigned, the round planned, every unit called down point by point, samples pooled ten to a
tube, bedridden residents sampled at home, and the lab's results entered (one positive pool, one
invalid one), down to the confirmed case.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import func, select

from juwei.consumer import EventConsumer
from juwei.events import Envelope
from juwei.service import Runtime
from juwei.vault import SEALED_KEY_HEADER
from services.testing.views import residents
from tests.sealing import HEALTH_SEAL
from tests.testing.compound import Compound
from tests.testing.conftest import Testing

FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


def publish(kafka: str, topic: str, envelopes: Iterable[Envelope], granted: Runtime | None = None) -> int:
    """The residents service's records as its relay would send them: binary CloudEvents keyed by building,
    with the keys of the sealed health flags for services sharing ``granted``'s health key."""
    producer = KafkaProducer(bootstrap_servers=kafka, enable_idempotence=True, acks="all", linger_ms=5)
    sent = 0
    try:
        for envelope in envelopes:
            key, value, headers = envelope.to_kafka()
            if granted is not None:
                headers += [(SEALED_KEY_HEADER, h) for h in HEALTH_SEAL.sealed_keys(granted, envelope.id)]
            producer.send(topic, key=key, value=value, headers=headers)
            sent += 1
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return sent


def residents_known(runtime: Runtime, compound: str) -> int:
    with runtime.database.reading() as session:
        return int(
            session.execute(
                select(func.count()).where(residents.c.compound == compound, residents.c.present.is_(True))
            ).scalar()
            or 0
        )


def join_at_the_end(runtime: Runtime, group: str, timeout: float = 60) -> EventConsumer:
    """Testing's consumer in a group of its own, positioned at the end of the shared topic.

    The topic holds every earlier test's residents; this round reads only what is published after.
    """
    consumer: EventConsumer = runtime.make_consumer()
    consumer.group = group
    consumer.consumer_overrides = {**FAST_GROUP, "auto_offset_reset": "latest"}
    deadline = time.monotonic() + timeout
    while not consumer.consumer.assignment():
        if time.monotonic() > deadline:
            consumer.close()
            raise AssertionError(f"consumer group {group} got no partitions in {timeout} s")
        consumer.poll_once(200)
    for partition in consumer.consumer.assignment():
        consumer.consumer.position(partition)  # pin "latest" now, before anything is published
    return consumer


def consume_register(
    consumer: EventConsumer, runtime: Runtime, compound: str, expected: int, timeout: float = 180
) -> float:
    """Poll until testing's register knows ``expected`` residents of the compound; seconds taken."""
    started = time.perf_counter()
    deadline = started + timeout
    try:
        while residents_known(runtime, compound) < expected:
            if time.perf_counter() > deadline:
                raise AssertionError(f"the register knows {residents_known(runtime, compound)} of {expected}")
            consumer.poll_once(500)
    finally:
        consumer.close()
    return time.perf_counter() - started


@dataclass
class RoundFigures:
    """What one round took: counts and seconds per stage."""

    calls: int = 0
    tubes: int = 0
    samples: int = 0
    door_to_door: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    case: str | None = None


@dataclass
class MassRound:
    testing: Testing
    compound: Compound
    points: int = 6
    throughput: float = 4.0
    figures: RoundFigures = field(default_factory=RoundFigures)
    _tube_serial: int = 0
    _tubes: list[str] = field(default_factory=list)
    _by_building: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)

    def timed(self, stage: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        self.figures.seconds[stage] = self.figures.seconds.get(stage, 0.0) + time.perf_counter() - started
        return result

    def prepare(self) -> dict[str, Any]:
        testing = self.testing
        for n in range(1, self.points + 1):
            testing.ok(
                "POST",
                "/points",
                json={"point": f"p{n}", "name": f"Point {n}", "location": f"gate {n}", "throughput": self.throughput},
            )
        testing.ok("POST", "/assignment/proposal")
        testing.ok(
            "POST",
            "/rounds",
            json={
                "round": "r1",
                "starts_at": "2022-04-12T07:00",
                "points": [f"p{n}" for n in range(1, self.points + 1)],
                "mode": "floor",
                "floors_per_call": 3,
                "window_minutes": 15,
            },
        )
        self.figures.plan = self.timed("plan", lambda: testing.ok("POST", "/rounds/r1/plan"))
        return self.figures.plan

    def _unit_residents(self, call: dict[str, Any]) -> list[str]:
        if not self._by_building:
            for resident, (building, _household, floor, bedridden) in self.compound.residents.items():
                if not bedridden:
                    room = self.compound.room_of(resident)
                    self._by_building.setdefault(building, []).append((resident, floor, room))
        rooms = set(call["rooms"])
        return [
            resident
            for resident, floor, room in self._by_building[call["building"]]
            if call["lowest_floor"] <= floor <= call["highest_floor"] and (not rooms or room in rooms)
        ]

    def _fill_tubes(self, people: list[str], headers: dict[str, str], **where: Any) -> None:
        for start in range(0, len(people), 10):
            self._tube_serial += 1
            tube = f"T{self._tube_serial:05d}"
            batch = people[start : start + 10]
            self.timed(
                "sample",
                lambda t=tube, b=batch: self.testing.ok(
                    "POST", "/rounds/r1/samples", headers=headers, json={"tube": t, "residents": b, **where}
                ),
            )
            self._tubes.append(tube)
            self.figures.tubes += 1
            self.figures.samples += len(batch)

    def call_and_sample(self) -> None:
        """Volunteers at every point press "call next" in turn; whoever comes down is swabbed, ten to a tube."""
        keys = {p["point"]: self.testing.point_key(p["point"]) for p in self.figures.plan["points"]}
        left = {p["point"]: len(p["calls"]) for p in self.figures.plan["points"]}
        waiting: dict[str, list[str]] = {point: [] for point in keys}
        while any(left.values()):
            for point, headers in keys.items():
                if not left[point]:
                    continue
                called = self.timed(
                    "call",
                    lambda h=headers, p=point: self.testing.ok("POST", f"/rounds/r1/points/{p}/calls/next", headers=h),
                )
                left[point] -= 1
                self.figures.calls += 1
                waiting[point].extend(self._unit_residents(called))
                full = len(waiting[point]) // 10 * 10
                if full:
                    self._fill_tubes(waiting[point][:full], headers)
                    waiting[point] = waiting[point][full:]
        for point, rest in waiting.items():
            self._fill_tubes(rest, keys[point])
        visits = self.testing.ok("GET", "/rounds/r1/door-to-door")["visits"]
        self.figures.door_to_door = len(visits)
        self._fill_tubes([v["resident"] for v in visits], keys["p1"], door_to_door=True)

    def result(self, positive: int = 7, invalid: int = 13) -> None:
        """Every tube negative but one positive pool (re-tested one by one: one case) and one invalid pool."""
        testing = self.testing
        tubes = list(self._tubes)
        for number, tube in enumerate(tubes, start=1):
            outcome = "positive" if number == positive else "invalid" if number == invalid else "negative"
            answer = self.timed(
                "result", lambda t=tube, o=outcome: testing.ok("POST", f"/tubes/{t}/result", json={"result": o})
            )
            if outcome == "positive":
                pooled = answer["residents"]
            elif outcome == "invalid":
                recalled = answer["residents"]
        staff = testing.staff
        for number, person in enumerate(pooled, start=1):
            testing.ok(
                "POST", "/rounds/r1/samples", json={"tube": f"S{number:03d}", "residents": [person], "point": "p1"}
            )
            answer = testing.ok(
                "POST",
                f"/rounds/r1/residents/{person}/result",
                json={"result": "positive" if number == 1 else "negative"},
                headers=staff,
            )
            self.figures.case = self.figures.case or answer["case"]
        testing.ok("POST", "/rounds/r1/samples", json={"tube": "R0001", "residents": recalled, "point": "p1"})
        testing.ok("POST", "/tubes/R0001/result", json={"result": "negative"})
