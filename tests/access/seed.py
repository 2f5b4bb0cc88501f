"""Compound c1 as the access matrix needs it: something of everything in every service, made over HTTP.

Buildings b1 and b2 have residents on floors 1-8 (rooms above are free for new households), b3 is empty;
each of b1 and b2 has an information officer and a logistics group (shifts A and B, one leader). Testing
has points p1 (serving b1) and p2 (b2), a planned PCR round R1, an antigen round A1, a tube T0, a case and a
disinfection with a photo; supplies a dispatched batch with a follow-up in b1 and a medicine request; notify
a webhook channel, an announcement and a question in b1. ``Pool`` hands out residents nobody used yet.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.access.world import World, as_csv, building_rows, resident_rows

COMPOUND = "c1"
FLOORS, ROOMS, LIVED_IN = 20, 4, 8
C = f"/compounds/{COMPOUND}"


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@dataclass
class Pool:
    """Fresh ids and residents not yet used by another request."""

    residents: dict[str, list[str]]
    rooms: dict[str, Iterator[tuple[int, int]]] = field(default_factory=dict)
    serial: int = 0

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def resident(self, building: str = "b1") -> str:
        return self.residents[building].pop()

    def room(self, building: str = "b1") -> tuple[int, int]:
        if building not in self.rooms:
            self.rooms[building] = iter([(f, r) for f in range(LIVED_IN + 1, FLOORS + 1) for r in range(1, ROOMS + 1)])
        return next(self.rooms[building])


@dataclass
class Seeded:
    pool: Pool
    households: dict[str, list[str]]  # household → members (local ids)
    case: str
    disinfection: str
    photo: str
    message: str
    channel: str
    question_group: str
    board_token: str
    follow_up: str  # a household of b1 with a failed delivery of batch B0
    card: str  # a resident of b1 whose medicine card is requested
    medicine: str  # that request


def seed(world: World) -> Seeded:
    ok = world.ok
    ok("residents", "POST", f"{C}/import", params={"kind": "buildings"},
       content=as_csv(building_rows(3, FLOORS, ROOMS), ("building", "number", "floors", "rooms_per_floor", "lifts",
                                                        "lift_capacity")),
       headers={"content-type": "text/csv"})  # fmt: skip
    rows = resident_rows(2, LIVED_IN, ROOMS)
    from services.residents.domain import IMPORT_COLUMNS

    ok("residents", "POST", f"{C}/import", params={"kind": "residents"}, content=as_csv(rows, IMPORT_COLUMNS),
       headers={"content-type": "text/csv"})  # fmt: skip
    households: dict[str, list[str]] = {}
    by_building: dict[str, list[str]] = {"b1": [], "b2": []}
    for row in rows:
        households.setdefault(str(row["household"]), []).append(str(row["resident"]))
        by_building[str(row["building"])].append(str(row["resident"]))
    for b in ("b1", "b2"):
        team = [(f"o{b}", "information_officer", None, False), (f"l{b}a1", "logistics", "A", True),
                (f"l{b}a2", "logistics", "A", False), (f"l{b}b1", "logistics", "B", False),
                (f"l{b}b2", "logistics", "B", False)]  # fmt: skip
        for volunteer, role, shift, leader in team:
            ok("residents", "POST", f"{C}/volunteers", json={"volunteer": volunteer, "building": b, "skills": []})
            ok("residents", "PUT", f"{C}/buildings/{b}/roles/{volunteer}",
               json={"role": role, "shift": shift, "leader": leader})  # fmt: skip
    world.pump()

    # The members of h1-0101 and h2-0101 belong to the household keys: keep them out of the pool.
    for b, home in (("b1", "h1-0101"), ("b2", "h2-0101")):
        by_building[b] = [p for p in by_building[b] if p not in households[home]]
    pool = Pool({b: list(reversed(people)) for b, people in by_building.items()})

    for point, building in (("p1", "b1"), ("p2", "b2")):
        ok("testing", "POST", f"{C}/points", json={"point": point, "name": point, "location": "gate", "throughput": 4})
        ok("testing", "PUT", f"{C}/points/{point}/buildings", json={"buildings": [building]})
    ok("testing", "POST", f"{C}/rounds", json={"round": "R1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"]})
    ok("testing", "POST", f"{C}/rounds/R1/plan")
    ok("testing", "POST", f"{C}/rounds", json={"round": "A1", "kind": "antigen", "starts_at": "2022-04-12T08:00"})
    ok("testing", "POST", f"{C}/rounds/R1/samples", json={"tube": "T0", "residents": [pool.resident()], "point": "p1"})
    case = confirmed_case(world, pool)
    made = ok("testing", "POST", f"{C}/buildings/b1/disinfections", data={"areas": ["lobby"]},
              files=[("photos", ("lobby.png", png(), "image/png"))])  # fmt: skip
    disinfection, photo = made["disinfection"], made["photos"][0]["photo"]

    ok(
        "supplies",
        "POST",
        f"{C}/batches",
        json={
            "batch": "B0",
            "source": "government",
            "whole_compound": True,
            "items": [{"item": "rice", "quantity": 200, "unit": "bag"}],
        },
    )
    ok("supplies", "POST", f"{C}/batches/B0/allocation", json={"method": "equal"})
    ok("supplies", "POST", f"{C}/batches/B0/dispatch", json={})
    follow_up = "h1-0102"
    ok("supplies", "POST", f"{C}/batches/B0/buildings/b1/outcomes",
       json={"outcomes": [{"household": follow_up, "outcome": "no_one_home"}]})  # fmt: skip
    card = pool.resident()
    medicine = medicine_request(world, card, pool)

    channel = attach_channel(world, "b1")
    message = ok("notify", "POST", f"{C}/announcements", json={"title": "明日全员核酸", "buildings": ["b1"]})["message"]
    asked = ok("notify", "POST", f"{C}/buildings/b1/questions", json={"text": "我们楼什么时候解封？"})
    token = ok("notify", "GET", f"{C}/buildings/b1/board")["url"].rsplit("/", 1)[1]
    return Seeded(pool, households, case, disinfection, photo, message, channel, asked["question_group"], token,
                  follow_up, card, medicine)  # fmt: skip


def confirmed_case(world: World, pool: Pool, building: str = "b1") -> str:
    """A fresh round in which one fresh resident is positive in a pool and then alone: the case id."""
    person, round_ = pool.resident(building), pool.fresh("rc")
    point = "p1" if building == "b1" else "p2"
    world.ok("testing", "POST", f"{C}/rounds", json={"round": round_, "starts_at": "2022-04-12T07:00",
                                                     "points": [point]})  # fmt: skip
    pooled, alone = pool.fresh("TP"), pool.fresh("TS")
    world.ok("testing", "POST", f"{C}/rounds/{round_}/samples",
             json={"tube": pooled, "residents": [person], "point": point})  # fmt: skip
    world.ok("testing", "POST", f"{C}/tubes/{pooled}/result", json={"result": "positive"})
    world.ok("testing", "POST", f"{C}/rounds/{round_}/samples",
             json={"tube": alone, "residents": [person], "point": point})  # fmt: skip
    return world.ok("testing", "POST", f"{C}/tubes/{alone}/result", json={"result": "positive"})["case"]


def medicine_request(world: World, resident: str, pool: Pool) -> str:
    request = pool.fresh("m")
    world.ok("supplies", "POST", f"{C}/medicine-requests",
             json={"request": request, "resident": resident, "medicine": "硝苯地平控释片 30mg",
                   "quantity": "2 boxes", "hospital": "瑞金医院"})  # fmt: skip
    return request


def attach_channel(world: World, building: str) -> str:
    made: dict[str, Any] = world.ok(
        "notify", "POST", f"{C}/groups/{building}/channels",
        json={"kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32}, "label": "test"},
    )  # fmt: skip
    return str(made["channel"])
