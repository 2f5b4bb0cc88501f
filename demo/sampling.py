"""The PCR round at the sampling points, floor by floor, down to one confirmed case, its transfer and the
disinfection of its building."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from demo.api import DemoError, in_parallel, wait_until
from demo.compound import Person
from demo.day import Day

POINTS = (
    ("会所", "小区会所门前"),
    ("北门广场", "北门内广场"),
    ("南门", "南门岗亭旁"),
    ("东区绿地", "东区 8 号楼前绿地"),
    ("西区停车场", "西区地面停车场"),
    ("中心花园", "中心花园凉亭"),
)


def png(width: int = 8, height: int = 8) -> bytes:
    """A small real PNG: the disinfection photo (the service checks the bytes are an image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + b"\x20\xa0\x60" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class Sampling(Day):
    """Everyone tested, and the case."""

    def test_everyone(self) -> None:
        assert self.outcome is not None
        compound, size, staff = self.outcome.compound, self.options.size, self.key("staff")
        round_id = self.outcome.round = f"pcr-{self.today:%Y%m%d}"
        points = [f"p{n}" for n in range(1, size.points + 1)]
        with self.phase("sampling points, buildings assigned, the round planned", 4) as advance:
            for n, point in enumerate(points):
                name, place = POINTS[n % len(POINTS)]
                self.suite.post(
                    "testing",
                    self.path("/points"),
                    {"point": point, "name": name, "location": place, "throughput": 4},
                    key=staff,
                )
            expected = len(compound.people)

            def testing_knows() -> bool:
                proposal = self.suite.get("testing", self.path("/assignment/proposal"), key=staff)["points"]
                return sum(p["residents"] for p in proposal) == expected

            wait_until(testing_knows, "testing's register to know every resident", timeout=120)
            advance(1)
            adopted = self.suite.post("testing", self.path("/assignment/proposal"), key=staff)["points"]
            for entry in adopted:  # people where they fit: each point staffed from the buildings it serves
                volunteers = [compound.teams[b].sampler for b in entry["buildings"]]
                self.suite.patch(
                    "testing", self.path(f"/points/{entry['point']}"), {"volunteers": volunteers}, key=staff
                )
            advance(1)
            self.suite.post(
                "testing",
                self.path("/rounds"),
                {
                    "round": round_id,
                    "kind": "pcr",
                    "starts_at": f"{self.today.isoformat()}T07:00",
                    "points": points,
                    "mode": "floor",
                    "floors_per_call": 3,
                    "window_minutes": 15,
                },
                key=staff,
            )
            advance(1)
            plan = self.suite.post("testing", self.path(f"/rounds/{round_id}/plan"), key=staff)
            advance(1)
        point_keys = {p: self.suite.post("testing", self.path(f"/points/{p}/keys"), key=staff)["key"] for p in points}
        calls = sum(len(p["calls"]) for p in plan["points"])
        self.say(
            f"round {round_id}: {calls} calls at {len(points)} points, floor by floor; "
            f"{plan['door_to_door']} bedridden residents sampled at home"
        )

        # A few residents are not home when their floors are called: the coverage list must name them.
        walking = [p for p in compound.people if not p.bedridden]
        absent = self.rng.sample(walking, max(1, round(len(walking) * 0.003)))
        self.outcome.absent = sorted(p.resident for p in absent)
        skip = set(self.outcome.absent)
        by_floor: dict[tuple[str, int], list[Person]] = {}
        for person in walking:
            by_floor.setdefault((person.building, person.floor), []).append(person)
        tubes: list[tuple[str, str, list[str]]] = []  # (tube, point, residents)
        serial = 0

        def fill(point: str, people: list[str], **where: Any) -> None:
            nonlocal serial
            for start in range(0, len(people), 10):
                serial += 1
                tube = f"T{self.today:%m%d}-{serial:05d}"
                batch = people[start : start + 10]
                self.suite.post(
                    "testing",
                    self.path(f"/rounds/{round_id}/samples"),
                    {"tube": tube, "residents": batch, **where},
                    key=point_keys[point],
                )
                tubes.append((tube, point, batch))
                advance(len(batch))

        with self.phase(
            f"PCR round: {calls} floor calls, pooled 10 to a tube", len(compound.people) - len(skip)
        ) as advance:
            left = {p["point"]: len(p["calls"]) for p in plan["points"]}
            waiting: dict[str, list[str]] = {p: [] for p in left}
            while any(left.values()):
                for point in left:
                    if not left[point]:
                        continue
                    called = self.suite.post(
                        "testing", self.path(f"/rounds/{round_id}/points/{point}/calls/next"), key=point_keys[point]
                    )
                    left[point] -= 1
                    rooms = set(called["rooms"])
                    for floor in range(called["lowest_floor"], called["highest_floor"] + 1):
                        for person in by_floor.get((called["building"], floor), []):
                            if (not rooms or person.room in rooms) and person.resident not in skip:
                                waiting[point].append(person.resident)
                    full = len(waiting[point]) // 10 * 10
                    if full:
                        fill(point, waiting[point][:full])
                        waiting[point] = waiting[point][full:]
            for point, rest in waiting.items():
                fill(point, rest)
            visits = self.suite.get("testing", self.path(f"/rounds/{round_id}/door-to-door"), key=staff)["visits"]
            fill(points[0], [v["resident"] for v in visits], door_to_door=True)

        people = {p.resident: p for p in compound.people}
        pooled = [t for t in tubes if len(t[2]) > 1]
        positive_tube = pooled[len(pooled) // 3]
        index_case = next(r for r in positive_tube[2] if not people[r].infant)
        with self.phase("the lab: tube results, one positive pool re-tested one by one", len(tubes)) as advance:

            def result(tube: tuple[str, str, list[str]]) -> None:
                outcome = "positive" if tube is positive_tube else "negative"
                self.suite.post("testing", self.path(f"/tubes/{tube[0]}/result"), {"result": outcome}, key=staff)
                advance(1)

            in_parallel(result, tubes, self.options.workers)
            for n, resident in enumerate(positive_tube[2], start=1):
                self.suite.post(
                    "testing",
                    self.path(f"/rounds/{round_id}/samples"),
                    {"tube": f"S{self.today:%m%d}-{n:03d}", "residents": [resident]},
                    key=point_keys[positive_tube[1]],
                )
            for resident in positive_tube[2]:
                answer = self.suite.post(
                    "testing",
                    self.path(f"/rounds/{round_id}/residents/{resident}/result"),
                    {"result": "positive" if resident == index_case else "negative"},
                    key=staff,
                )
                if answer.get("case"):
                    self.outcome.case = answer["case"]
        if not self.outcome.case:
            raise DemoError("the positive re-test opened no case")
        self.outcome.case_building = people[index_case].building
        coverage = self.suite.get("testing", self.path(f"/rounds/{round_id}/coverage"), key=self.key("officer"))
        counts = self.suite.get("testing", self.path(f"/rounds/{round_id}/counts"), key=staff)
        listed = {h["household"] for b in coverage["buildings"] for f in b["floors"] for h in f["households"]}
        members = compound.members()
        tested = {h for h, those in members.items() if not any(p.resident in skip for p in those)}
        self.outcome.households_unaccounted = sorted(set(members) - tested - listed)
        not_tested = {
            r for b in coverage["buildings"] for f in b["floors"] for h in f["households"] for r in h["not_tested"]
        }
        if not_tested != skip:
            raise DemoError(f"coverage lists {sorted(not_tested)[:5]}… as not tested; absent were {sorted(skip)[:5]}…")
        self.outcome.figures.update(
            points=len(points),
            calls=calls,
            tubes=len(tubes),
            samples=sum(len(t[2]) for t in tubes),
            door_to_door=len(visits),
            tested=counts["tested"],
            listed_missing=len(not_tested),
            households_listed=len(listed),
        )
        self.say(
            f"tested {counts['tested']:,} of {counts['residents']:,}; {len(not_tested)} not home, listed by "
            f"household for the officers; case {self.outcome.case} in building {self.outcome.case_building}"
        )

    def the_case(self) -> None:
        assert self.outcome is not None
        building, case, staff = self.outcome.case_building, self.outcome.case, self.key("staff")
        with self.phase(f"building {building}: sealed (residents hears CaseConfirmed on Kafka)", 1) as advance:

            def sealed() -> dict[str, Any] | None:
                zone = self.suite.get("residents", self.path(f"/buildings/{building}/zone"), key=staff)
                return zone if zone["zone"] == "sealed" else None

            zone = wait_until(sealed, f"building {building} to be sealed", timeout=120)
            advance(1)
        self.outcome.figures["zone"] = zone
        with self.phase("transfer scheduled and done, disinfection with a photo", 3) as advance:
            self.suite.post(
                "testing",
                self.path(f"/cases/{case}/transfer"),
                {"scheduled_at": f"{self.today.isoformat()}T14:00"},
                key=staff,
            )
            advance(1)
            self.suite.post("testing", self.path(f"/cases/{case}/transferred"), {"facility": "区集中隔离点"}, key=staff)
            advance(1)
            self.suite.post(
                "testing",
                self.path(f"/buildings/{building}/disinfections"),
                key=self.key("officer"),
                data={"areas": ["电梯", "电梯厅", "楼道", "单元门"], "case": case},
                files=[("photos", ("lobby.png", png(), "image/png"))],
            )
            advance(1)
        self.say(
            f"building {building}: {zone['zone']} zone, next change {zone['next_change_on']}; case transferred, "
            "common areas disinfected (photo posted)"
        )
