"""One day of the seed compound, through the four services' public HTTP APIs.

The committee registers the compound (the residents sheet, staff coverage, each building's information
officer, logistics group and sampling volunteer); the building groups get their channels; a PCR round
runs at the sampling points, floor by floor, pooled ten to a tube, with one positive pool re-tested one by
one down to a confirmed case, whose building residents seals on hearing of it over Kafka; the case is
transferred and the building disinfected, with a photo; a government batch large enough to call both
logistics shifts is delivered floor by floor, the few failures followed up; thirty elderly residents'
medicine is bought with their medical-insurance cards, every card accounted for on its way out and back;
a donation of masks is accepted and one of meals refused; residents' questions from several buildings are
grouped and answered. At the end, what each building's group received is counted at the sinks and checked
against what the events imply (``demo.ledger``).
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from demo.api import DemoError, Suite, in_parallel, wait_until
from demo.compound import Compound, Person, Size, make_compound
from demo.ledger import GroupAccount, account, composed_for, directory_of, implied
from demo.sinks import GroupSinks

POINTS = (
    ("会所", "小区会所门前"),
    ("北门广场", "北门内广场"),
    ("南门", "南门岗亭旁"),
    ("东区绿地", "东区 8 号楼前绿地"),
    ("西区停车场", "西区地面停车场"),
    ("中心花园", "中心花园凉亭"),
)
MEDICINES = (
    "硝苯地平控释片 30mg",
    "二甲双胍缓释片 0.5g",
    "阿托伐他汀钙片 20mg",
    "苯磺酸氨氯地平片 5mg",
    "单硝酸异山梨酯缓释片 40mg",
    "阿司匹林肠溶片 100mg",
)
HOSPITALS = ("瑞金医院", "中山医院", "华山医院", "第六人民医院", "徐汇区中心医院")
SUBDISTRICT = "sd-wang"  # the subdistrict officer who buys the medicine (their own id, not the compound's)
# Residents' questions as information officers pass them on: two themes asked in several buildings.
QUESTIONS = {
    "transfer": (
        "我们楼的阳性什么时候转运？",
        "请问楼里阳性病例什么时候转运走",
        "阳性什么时候能转运啊",
        "楼里的阳性啥时候转运",
    ),
    "zone": ("什么时候从封控区变成防范区？", "封控区什么时候解封变防范区呢", "小区什么时候能变成防范区"),
}
ANSWERS = {
    "transfer": {
        "question": "楼里的阳性病例什么时候转运？",
        "answer": "转运由区里统一调度，今天 14:00 已安排车辆；转运完成后会在本群通知，并对楼栋公共区域消杀。",
        "policy_points": ["阳性病例转运由区疫情防控指挥部统一调度", "转运后楼栋公共区域当天消杀，并在群内公布照片"],
    },
    "zone": {
        "question": "小区什么时候从封控区转为防范区？",
        "answer": "封控区连续 7 天无新增阳性转为管控区，再满 7 天无新增转为防范区；每天的天数会在本群通报。",
        "policy_points": ["封控区：足不出户，服务上门", "7 天无新增阳性转管控区，14 天无新增转防范区"],
    },
}
ROLE_KEYS = {
    "staff": ("committee-staff", "demo: the committee"),
    "officer": ("information-officer", "demo: the information officers"),
    "logistics": ("logistics-volunteer", "demo: the logistics groups"),
    "subdistrict": ("subdistrict-staff", "demo: the subdistrict office"),
}
# Keys are issued to people of the register: the staff key before anything is registered (to the secretary,
# registered first), the volunteers' keys once they are enlisted. One key stands for all officers (or all
# logistics groups) of the demo, so it names every building; a real officer's key names their own.
KEYS_FIRST = ("staff", "subdistrict")


@dataclass
class Options:
    urls: dict[str, str]
    key: str
    compound: str = "c1"
    size: Size = field(default_factory=Size)
    seed: int = 2022
    kafka: str | None = None  # for "has everyone caught up?"; None: the services' /status only
    role_keys: str = "auto"  # auto | cli | operator
    cli_env: dict[str, str] | None = None  # the suite's settings, for `juwei keys create` (default: ours)
    sink_host: str = "127.0.0.1"
    sink_advertised: str | None = None
    workers: int = 4
    delivery_timeout: float = 420.0


@dataclass
class Outcome:
    """What the day did: figures for the summary and for the end-to-end test's assertions."""

    compound: Compound
    round: str = ""
    case: str = ""
    case_building: str = ""
    absent: list[str] = field(default_factory=list)
    households_unaccounted: list[str] = field(default_factory=list)
    batch: str = ""
    donation_batch: str = ""
    shift_calls: list[dict[str, Any]] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)
    groups: list[GroupAccount] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # which key acted for whom ("cli" or "operator")
    texts: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)  # building → channel → texts

    @property
    def ok(self) -> bool:
        return bool(self.groups) and all(g.ok for g in self.groups) and not self.households_unaccounted


def png(width: int = 8, height: int = 8) -> bytes:
    """A small real PNG: the disinfection photo (the service checks the bytes are an image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + b"\x20\xa0\x60" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class Day:
    def __init__(self, options: Options, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console(stderr=True)
        self.suite = Suite(options.urls, options.key)
        self.rng = random.Random(options.seed)
        self.c = options.compound
        self.keys: dict[str, str] = {}
        self.sinks: GroupSinks | None = None
        self.progress: Progress | None = None
        self.outcome: Outcome | None = None
        self.today = date.today()

    # --- plumbing ---------------------------------------------------------------------------------------

    def path(self, tail: str) -> str:
        return f"/compounds/{self.c}{tail}"

    def key(self, who: str) -> str:
        return self.keys.get(who, self.options.key)

    def say(self, text: str) -> None:
        self.console.print(text)

    @contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        assert self.progress is not None and self.outcome is not None
        task = self.progress.add_task(name, total=total)
        started = time.perf_counter()

        def advance(n: int = 1) -> None:
            assert self.progress is not None
            self.progress.advance(task, n)

        yield advance
        elapsed = time.perf_counter() - started
        self.outcome.timings[name] = self.outcome.timings.get(name, 0.0) + elapsed
        self.progress.update(
            task, total=total or 1, completed=total or 1, description=f"[green]✓[/] {name} [dim]({elapsed:.1f} s)[/]"
        )

    # --- the day ----------------------------------------------------------------------------------------

    def run(self) -> Outcome:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        started = time.perf_counter()
        try:
            with Progress(*columns, console=self.console) as self.progress:
                self.preflight()
                self.register()
                self.catch_up()
                self.attach_channels()
                self.test_everyone()
                self.the_case()
                self.donations()
                self.supplies()
                self.medicine_run()
                self.questions()
                self.count_at_the_sinks()
        finally:
            if self.sinks is not None:
                self.sinks.stop()
            self.suite.close()
        assert self.outcome is not None
        self.outcome.timings["the whole day"] = time.perf_counter() - started
        self.outcome.figures["requests"] = self.suite.requests
        return self.outcome

    def preflight(self) -> None:
        down = {name: why for name, why in self.suite.healthy().items() if why}
        if down:
            raise DemoError(
                "not answering: "
                + ", ".join(f"{n} ({w})" for n, w in down.items())
                + " — start the suite with `juwei run --detach` (or the compose stack) first"
            )
        self.today = date.fromisoformat(self.suite.get("residents", self.path("/zones"))["today"])
        known = self.suite.get("residents", self.path("/buildings"))["buildings"]
        if known:
            raise DemoError(
                f"compound {self.c} already has {len(known)} buildings: run the demo on a new compound "
                f"(--compound {self.c}x) or on a fresh data folder"
            )
        compound = make_compound(self.c, self.options.size, seed=self.options.seed, today=self.today)
        self.outcome = Outcome(compound)
        self.outcome.keys = {who: "operator" for who in ROLE_KEYS}
        with self.phase("API keys for the committee and the subdistrict"):
            self.role_keys(KEYS_FIRST)
        self.say(
            f"[bold]{self.c}[/]: {len(compound.buildings)} buildings, {len(compound.households):,} households, "
            f"{len(compound.people):,} residents; today is {self.today.isoformat()} (the services' date)"
        )

    def role_keys(self, whose: tuple[str, ...]) -> None:
        """Keys scoped to the compound for these roles, each issued to a person of the register (or the
        subdistrict office), made with ``juwei keys create`` where the services' databases are here."""
        assert self.outcome is not None
        choice = self.options.role_keys
        env = {**os.environ, **(self.options.cli_env or {})}
        if choice == "operator" or (choice == "auto" and not _local_databases(env)):
            self.say("[dim]role keys: the operator key acts for everyone (the services' databases are not here)[/]")
            return
        compound = self.outcome.compound
        secretary = next(iter(compound.staff))
        if "staff" in whose:  # the secretary is registered (no buildings yet) so that the key names them
            self.suite.put("residents", self.path(f"/staff/{secretary}/buildings"), {"buildings": []})
        first = compound.teams[next(iter(compound.teams))]
        every = ",".join(b.building for b in compound.buildings)
        holders = {
            "staff": ["--staff", secretary],
            "officer": ["--volunteer", first.officer, "--buildings", every],
            "logistics": ["--volunteer", first.leader, "--buildings", every],
            "subdistrict": ["--official", "subdistrict office (demo)"],
        }
        # One `juwei keys create` per role, side by side (each stores its key in all four services).
        running = {
            who: subprocess.Popen(
                [sys.executable, "-m", "juwei.cli", "keys", "create", "--role", ROLE_KEYS[who][0],
                 "--compound", self.c, "--label", ROLE_KEYS[who][1], *holders[who]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            )
            for who in whose
        }  # fmt: skip
        for who, process in running.items():
            out, err = process.communicate(timeout=180)
            key = out.strip().splitlines()[-1] if process.returncode == 0 and out.strip() else ""
            if key and self._works(key):
                self.keys[who] = key
                self.outcome.keys[who] = "cli"
            elif choice == "cli":
                raise DemoError(f"`juwei keys create --role {ROLE_KEYS[who][0]}` gave no working key: {err[-500:]}")
        if any(who not in self.keys for who in whose):
            self.say("[yellow]some role keys could not be made here: the operator key acts for them[/]")

    def _works(self, key: str) -> bool:
        """Whether every service knows the key (each keeps its own table of keys)."""
        try:
            self.suite.get("residents", self.path("/zones"), key=key, attempts=1)
            self.suite.get("supplies", self.path("/ledger"), key=key, attempts=1)
            self.suite.get("testing", self.path("/rounds"), key=key, attempts=1)
            self.suite.get("notify", self.path("/quiet-hours"), key=key, attempts=1)
            return True
        except DemoError:
            return False

    # --- registration -----------------------------------------------------------------------------------

    def register(self) -> None:
        assert self.outcome is not None
        compound = self.outcome.compound
        staff = self.key("staff")
        with self.phase("register: buildings and residents (CSV import)", 2) as advance:
            sheet = compound.buildings_csv()
            self.suite.post(
                "residents",
                self.path("/import"),
                params={"kind": "buildings"},
                content=sheet,
                headers={"Content-Type": "text/csv"},
                key=staff,
            )
            advance(1)
            sheet = compound.residents_csv()
            imported = self.suite.post(
                "residents",
                self.path("/import"),
                params={"kind": "residents"},
                content=sheet,
                headers={"Content-Type": "text/csv"},
                key=staff,
            )
            advance(1)
        people = compound.people
        self.outcome.figures.update(
            buildings=len(compound.buildings),
            households=imported["households"]["created"],
            residents=imported["residents"]["created"],
            elderly=sum(compound.elderly(p) for p in people),
            regular_medication=sum(p.regular_medication for p in people),
            bedridden=sum(p.bedridden for p in people),
            infants=sum(p.infant for p in people),
            pregnant=sum(p.pregnant for p in people),
        )
        with self.phase("staff coverage", len(compound.staff)) as advance:
            for member, buildings in compound.staff.items():
                self.suite.put(
                    "residents", self.path(f"/staff/{member}/buildings"), {"buildings": buildings}, key=staff
                )
                advance(1)
            coverage = self.suite.get("residents", self.path("/coverage"), key=staff)
            if coverage["uncovered"]:
                raise DemoError(f"buildings nobody covers: {coverage['uncovered']}")
        teams = compound.teams
        with self.phase("volunteers: officer, logistics group A/B, sampling", len(teams) * 8) as advance:

            def enlist(building: str) -> None:
                team = teams[building]
                skills = (["spreadsheets", "statistics"], ["writing", "publicity"])[int(building) % 2]
                chosen = [
                    (team.officer, skills, "information_officer", None, False),
                    *(
                        (v, ["carrying"] + (["organising"] if lead else []), "logistics", shift, lead)
                        for v, shift, lead in team.logistics
                    ),
                    (team.sampler, ["sampling"], "sampling_point", None, False),
                ]
                for volunteer, their_skills, role, shift, leader in chosen:
                    self.suite.post(
                        "residents",
                        self.path("/volunteers"),
                        {"volunteer": volunteer, "building": building, "skills": their_skills},
                        key=staff,
                    )
                    body: dict[str, Any] = {"role": role, "leader": leader}
                    if shift:
                        body["shift"] = shift
                    self.suite.put("residents", self.path(f"/buildings/{building}/roles/{volunteer}"), body, key=staff)
                    advance(1)

            in_parallel(enlist, list(teams), self.options.workers)
        self.outcome.figures.update(staff=len(compound.staff), volunteers=len(teams) * 8)
        with self.phase("API keys for the information officers and the logistics groups"):
            self.role_keys(tuple(who for who in ROLE_KEYS if who not in KEYS_FIRST))

    def catch_up(self) -> None:
        """Testing, supplies and notify learn the register from juwei.residents (Kafka): wait until they have."""
        assert self.outcome is not None
        compound = self.outcome.compound
        with self.phase("the register reaches testing, supplies and notify over Kafka"):
            how = self.suite.settle(self.options.kafka, timeout=300)
            households = Counter(b for b, _f, _r in compound.households.values())

            def notify_knows() -> bool:
                groups = self.suite.get("notify", self.path("/groups"), key=self.key("staff"))["groups"]
                seen = {g["building"]: (g["households"], g["members"]) for g in groups}
                return all(seen.get(b) == (n, n) for b, n in households.items())

            wait_until(notify_knows, "notify's building groups to know every household", timeout=120)
        self.say(f"[dim]caught up: {how}[/]")

    def attach_channels(self) -> None:
        assert self.outcome is not None
        buildings = [b.building for b in self.outcome.compound.buildings]
        self.sinks = GroupSinks(self.c, self.options.sink_host, self.options.sink_advertised)
        attached = 0
        with self.phase("channels: a chat bot and an e-mail list per building group", len(buildings)) as advance:
            for building in buildings:
                existing = self.suite.get("notify", self.path(f"/groups/{building}/channels"), key=self.key("staff"))
                if not any(c["active"] for c in existing):  # a real channel configured: leave the group to it
                    for kind, config in self.sinks.channels_for(building):
                        self.suite.post(
                            "notify",
                            self.path(f"/groups/{building}/channels"),
                            {"kind": kind, "config": config, "label": f"{building}号楼官方群"},
                            key=self.key("staff"),
                        )
                        attached += 1
                advance(1)
        self.outcome.figures["channels"] = attached

    # --- testing ----------------------------------------------------------------------------------------

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

    # --- supplies ---------------------------------------------------------------------------------------

    def donations(self) -> None:
        assert self.outcome is not None
        staff = self.key("staff")
        case_homes = sum(
            1 for b, _f, _r in self.outcome.compound.households.values() if b == self.outcome.case_building
        )
        with self.phase("donations: masks accepted, meals refused (no gifts but epidemic supplies)", 2) as advance:
            masks = self.suite.post(
                "supplies",
                self.path("/donations"),
                {
                    "donation": "d-masks",
                    "donor": "donor-001",
                    "donor_name": "某医疗器械公司",
                    "items": [{"item": "kn95", "category": "masks", "quantity": case_homes * 10, "unit": "piece"}],
                },
                key=staff,
            )
            advance(1)
            meals = self.suite.post(
                "supplies",
                self.path("/donations"),
                {
                    "donation": "d-meals",
                    "donor": "donor-002",
                    "donor_name": "一位热心居民",
                    "items": [{"item": "staff_lunch", "category": "meals", "quantity": 7, "unit": "box"}],
                },
                key=staff,
            )
            advance(1)
        if masks["refused"] or not meals["refused"]:
            raise DemoError(f"the no-gifts rule did not hold: {masks}, {meals}")
        ledger = self.suite.get("supplies", self.path("/ledger"), key=self.key("officer"))
        if "d-meals" not in {d["donation"] for d in ledger["refused"]}:
            raise DemoError("the refused donation is not on the public ledger")
        self.outcome.figures.update(
            donation_accepted=masks["accepted"], donation_refused=meals["refused"], refusal_reason=meals["reason"]
        )

    def supplies(self) -> None:
        assert self.outcome is not None
        compound, size, staff = self.outcome.compound, self.options.size, self.key("staff")
        if size != Size():
            # A smaller compound calls both shifts for proportionally smaller batches (the policy is the compound's).
            policy = self.suite.get("supplies", self.path("/supply-policy"), key=staff)
            policy["both_shifts_households"] = max(2, round(60 * size.residents / 5000))
            policy["both_shifts_items"] = max(10, round(300 * size.residents / 5000))
            self.suite.put("supplies", self.path("/supply-policy"), policy, key=staff)
        households = len(compound.households)
        batch = self.outcome.batch = f"gov-{self.today:%m%d}"
        with self.phase("government batch: arrival, allocation by household size, both shifts called", 3) as advance:
            self.suite.post(
                "supplies",
                self.path("/batches"),
                {
                    "batch": batch,
                    "source": "government",
                    "label": "保供 蔬菜包、大米、鸡蛋",
                    "items": [
                        {"item": "vegetables", "quantity": households, "unit": "box"},
                        {"item": "rice", "quantity": len(compound.people), "unit": "bag"},
                        {"item": "eggs", "quantity": households, "unit": "box"},
                    ],
                    "whole_compound": True,
                },
                key=staff,
            )
            advance(1)
            self.suite.post(
                "supplies", self.path(f"/batches/{batch}/allocation"), {"method": "household_size"}, key=staff
            )
            advance(1)
            calls = self.suite.post("supplies", self.path(f"/batches/{batch}/dispatch"), key=staff)["calls"]
            advance(1)
        self.outcome.shift_calls = calls
        both = sum(1 for c in calls if c["both"])
        self.say(f"batch {batch}: {households:,} households; both shifts called in {both} of {len(calls)} buildings")
        failures = self.deliver(batch, failing=True)
        self.outcome.figures.update(both_shifts=both, delivery_failures=failures)

        # The donated masks go to the sealed building, and the ledger says so.
        self.outcome.donation_batch = donated = f"don-{self.today:%m%d}"
        building = self.outcome.case_building
        with self.phase(f"donated masks to building {building}", 3) as advance:
            quantity = 10 * sum(1 for b, _f, _r in compound.households.values() if b == building)  # as donated
            self.suite.post(
                "supplies",
                self.path("/batches"),
                {
                    "batch": donated,
                    "source": "donation",
                    "label": "捐赠 KN95 口罩",
                    "buildings": [building],
                    "donations": [{"donation": "d-masks", "item": "kn95", "quantity": quantity}],
                },
                key=staff,
            )
            advance(1)
            self.suite.post("supplies", self.path(f"/batches/{donated}/allocation"), {"method": "equal"}, key=staff)
            advance(1)
            self.suite.post("supplies", self.path(f"/batches/{donated}/dispatch"), key=staff)
            advance(1)
        self.deliver(donated, failing=False)

    def deliver(self, batch: str, *, failing: bool) -> int:
        """Each building's group delivers floor by floor; a few doors do not open, and are followed up."""
        assert self.outcome is not None
        teams, logistics = self.outcome.compound.teams, self.key("logistics")
        progress = self.suite.get("supplies", self.path(f"/batches/{batch}/progress"), key=logistics)["buildings"]

        def tasks_of(entry: dict[str, Any]) -> dict[str, Any]:
            listed = self.suite.get("supplies", self.path(f"/buildings/{entry['building']}/deliveries"), key=logistics)
            return next(d for d in listed["deliveries"] if d["batch"] == batch)

        tasks = dict(
            zip((e["building"] for e in progress), in_parallel(tasks_of, progress, self.options.workers), strict=True)
        )
        # Which doors do not open is decided per household (the same for the same seed), at least one of each.
        reasons: dict[str, str] = {}
        if failing:
            homes = [h["household"] for t in tasks.values() for f in t["floors"] for h in f["households"]]
            for household in homes:
                roll = random.Random(f"{self.options.seed}-{batch}-{household}").random()
                if roll < 0.04:
                    reasons[household] = "no_one_home" if roll < 0.03 else "refused"
            for reason, household in (("no_one_home", homes[0]), ("refused", homes[-1])):
                if reason not in reasons.values():
                    reasons[household] = reason
        failed: dict[str, list[tuple[str, str, str]]] = {}  # building → (household, reason, volunteer)

        def building_round(building: str) -> None:
            mine, team = tasks[building], teams[building]
            crew = [v for shift in mine["shifts"] for v in team.shift(shift)]
            for n, floor in enumerate(mine["floors"]):
                volunteer = crew[n % len(crew)]
                outcomes = []
                for home in floor["households"]:
                    reason = reasons.get(home["household"])
                    outcomes.append({"household": home["household"], "outcome": reason or "delivered"})
                    if reason:
                        failed.setdefault(building, []).append((home["household"], reason, volunteer))
                self.suite.post(
                    "supplies",
                    self.path(f"/batches/{batch}/buildings/{building}/outcomes"),
                    {"volunteer": volunteer, "outcomes": outcomes},
                    key=logistics,
                )
                advance(len(outcomes))

        total = sum(b["households"] for b in progress)
        with self.phase(f"deliveries of {batch}, floor by floor", total) as advance:
            in_parallel(building_round, list(tasks), self.options.workers)
        count = sum(len(v) for v in failed.values())
        if failing and count:
            with self.phase("follow-ups: nobody home → delivered again; refused → back to stock", count) as advance:
                listed = self.suite.get("supplies", self.path("/follow-ups"), params={"batch": batch}, key=logistics)[
                    "follow_ups"
                ]
                if len(listed) != count:
                    raise DemoError(f"{len(listed)} follow-ups listed, {count} deliveries failed")
                for building, homes in failed.items():
                    for household, reason, volunteer in homes:
                        if reason == "no_one_home":
                            self.suite.post(
                                "supplies",
                                self.path(f"/batches/{batch}/buildings/{building}/outcomes"),
                                {
                                    "volunteer": volunteer,
                                    "outcomes": [{"household": household, "outcome": "delivered"}],
                                },
                                key=logistics,
                            )
                        else:
                            self.suite.post(
                                "supplies",
                                self.path(f"/batches/{batch}/buildings/{building}/follow-ups/{household}/resolution"),
                                {"resolution": "returned_to_stock", "volunteer": volunteer},
                                key=logistics,
                            )
                        advance(1)
        done = self.suite.get("supplies", self.path(f"/batches/{batch}/progress"), key=logistics)
        if done["follow_ups"] or not all(b["complete"] for b in done["buildings"]):
            raise DemoError(f"batch {batch} is not complete: {done['follow_ups']} follow-ups left")
        return count

    def medicine_run(self) -> None:
        """Thirty elderly residents' cards: officer's survey, leader collects, subdistrict buys, all come back."""
        assert self.outcome is not None
        compound = self.outcome.compound
        by_building: dict[str, list[Person]] = {}
        for person in compound.people:
            if person.regular_medication and compound.elderly(person) and not person.bedridden:
                by_building.setdefault(person.building, []).append(person)
        chosen: list[Person] = []
        while len(chosen) < self.options.size.medicine_cards and any(by_building.values()):
            for building in list(by_building):
                if by_building[building] and len(chosen) < self.options.size.medicine_cards:
                    chosen.append(by_building[building].pop(0))
        self.outcome.cards = [p.resident for p in chosen]
        officer, logistics, subdistrict = self.key("officer"), self.key("logistics"), self.key("subdistrict")
        teams, stamp = compound.teams, f"{self.today:%m%d}"
        requests: dict[str, str] = {}
        with self.phase(f"medicine run: {len(chosen)} cards through the custody chain", len(chosen) * 5) as advance:
            for n, person in enumerate(chosen, start=1):
                request = requests[person.resident] = f"m-{stamp}-{n:02d}"
                self.suite.post(
                    "supplies",
                    self.path("/medicine-requests"),
                    {
                        "request": request,
                        "resident": person.resident,
                        "medicine": self.rng.choice(MEDICINES),
                        "quantity": "2盒",
                        "hospital": self.rng.choice(HOSPITALS),
                        "officer": teams[person.building].officer,
                    },
                    key=officer,
                )
                self.suite.post(
                    "supplies",
                    self.path(f"/cards/{person.resident}/collection"),
                    {"leader": teams[person.building].leader},
                    key=logistics,
                )
                advance(2)
            cards: dict[str, list[str]] = {}
            for person in chosen:
                cards.setdefault(person.building, []).append(person.resident)
            subdistrict_holder = {"kind": "subdistrict", "id": SUBDISTRICT}
            for building, residents in cards.items():
                leader = {"kind": "volunteer", "id": teams[building].leader}
                self.suite.post(
                    "supplies",
                    self.path("/card-handovers"),
                    {
                        "handover": f"ho-{stamp}-{building}-out",
                        "giver": leader,
                        "receiver": subdistrict_holder,
                        "cards": residents,
                    },
                    key=logistics,
                )
            for person in chosen:
                self.suite.post(
                    "supplies",
                    self.path(f"/medicine-requests/{requests[person.resident]}/purchase"),
                    {"buyer": subdistrict_holder},
                    key=subdistrict,
                )
                advance(1)
            for building, residents in cards.items():
                leader = {"kind": "volunteer", "id": teams[building].leader}
                self.suite.post(
                    "supplies",
                    self.path("/card-handovers"),
                    {
                        "handover": f"ho-{stamp}-{building}-back",
                        "giver": subdistrict_holder,
                        "receiver": leader,
                        "cards": residents,
                    },
                    key=subdistrict,
                )
                advance(len(residents))
            for person in chosen:
                self.suite.post(
                    "supplies",
                    self.path(f"/cards/{person.resident}/return"),
                    {"giver": {"kind": "volunteer", "id": teams[person.building].leader}},
                    key=logistics,
                )
                advance(1)
        out = self.suite.get("supplies", self.path("/cards"), params={"out": "true"}, key=logistics)["cards"]
        if out:
            raise DemoError(f"{len(out)} cards are still away from home")
        self.outcome.figures["cards"] = len(chosen)

    # --- questions --------------------------------------------------------------------------------------

    def questions(self) -> None:
        assert self.outcome is not None
        buildings = [b.building for b in self.outcome.compound.buildings]
        case_building = self.outcome.case_building
        at = buildings.index(case_building)
        # The case's building and its neighbours ask about the transfer; buildings across the compound about the zone.
        asking = {
            "transfer": [buildings[(at + k) % len(buildings)] for k in (0, 0, 1, -1)],
            "zone": [buildings[(at + k) % len(buildings)] for k in (len(buildings) // 2, len(buildings) // 3, 2)],
        }
        officer, staff = self.key("officer"), self.key("staff")
        asked = 0
        with self.phase("residents' questions: passed on, grouped, answered to every building that asked") as advance:
            for theme, where in asking.items():
                for building, text in zip(where, QUESTIONS[theme], strict=False):
                    self.suite.post(
                        "notify", self.path(f"/buildings/{building}/questions"), {"text": text}, key=officer
                    )
                    asked += 1
                    advance(1)
            groups = self.suite.get("notify", self.path("/question-groups"), key=staff)["groups"]
            answered = []
            for group in groups:
                theme = "transfer" if "转运" in " ".join(group["examples"]) else "zone"
                if len(group["buildings"]) < 2:
                    continue  # asked in one building only: the officer answers there
                done = self.suite.post(
                    "notify",
                    self.path(f"/question-groups/{group['question_group']}/answer"),
                    {**ANSWERS[theme], "priority": "normal"},
                    key=staff,
                )
                answered.append((theme, done["buildings"]))
                advance(1)
        self.outcome.figures.update(questions=asked, question_groups=len(groups), answers=answered)
        self.say(
            f"{asked} questions from {len({b for w in asking.values() for b in w})} buildings → "
            f"{len(groups)} groups; answered: " + "; ".join(f"{t} → buildings {', '.join(b)}" for t, b in answered)
        )

    # --- the groups -------------------------------------------------------------------------------------

    def count_at_the_sinks(self) -> None:
        assert self.outcome is not None and self.sinks is not None
        with self.phase("every event through Kafka to notify"):
            self.suite.settle(self.options.kafka, timeout=300)
        residents_feed = self.suite.feed("residents", self.c)
        feeds = [
            *residents_feed,
            *self.suite.feed("testing", self.c),
            *self.suite.feed("supplies", self.c),
            *self.suite.feed("notify", self.c),
        ]
        directory = directory_of(self.suite, self.c, residents_feed)
        wanted = implied(feeds, directory)
        composed = {b: composed_for(self.suite, self.c, b) for b in directory.buildings}
        total = sum(len(composed[b]) * len(self.sinks.channels_of(b)) for b in composed)
        sinks = self.sinks

        def accounts() -> list[GroupAccount]:
            return [
                GroupAccount(
                    b,
                    wanted[b],
                    composed[b],
                    [account(kind, texts, composed[b]) for kind, texts in sinks.received(b).items()],
                )
                for b in directory.buildings
            ]

        with self.phase("messages at the building groups' sinks", total) as advance:
            deadline = time.monotonic() + self.options.delivery_timeout
            shown = 0
            while True:
                groups = accounts()
                arrived = sum(min(ch.received[m.message], 1) for g in groups for ch in g.channels for m in g.composed)
                advance(arrived - shown)
                shown = arrived
                stuck = self.suite.get(
                    "notify", self.path("/deliveries"), params={"status": "dead,uncertain"}, key=self.key("staff")
                )["deliveries"]
                if arrived >= total or stuck or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
        # What arrived late (a rate-limit window) or twice would show now: count once more after a breath.
        time.sleep(1.5)
        self.outcome.groups = accounts()
        self.outcome.texts = {b: sinks.received(b) for b in directory.buildings}
        self.outcome.figures.update(
            messages=sum(len(v) for v in composed.values()),
            deliveries=total,
            texts=sum(ch.texts for g in self.outcome.groups for ch in g.channels),
            digests=sum(ch.digests for g in self.outcome.groups for ch in g.channels),
            stuck=len(stuck),
        )


def _local_databases(env: dict[str, str]) -> bool:
    """Whether ``juwei keys create`` here writes where the services read keys (their databases are here)."""
    if any(k.endswith("_DATABASE_URL") and k.startswith("JUWEI_") for k in env):
        return True
    data_dir = Path(env.get("JUWEI_DATA_DIR") or ".local")
    return all((data_dir / f"{name}.db").exists() for name in ("residents", "supplies", "testing", "notify"))


def summary(outcome: Outcome, console: Console) -> None:
    """The day in figures, then what each building's group received."""
    f, t = outcome.figures, outcome.timings
    day = Table(title=f"Compound {outcome.compound.compound}: the day in figures", title_justify="left")
    day.add_column("")
    day.add_column("what happened")
    day.add_column("seconds", justify="right")

    def row(what: str, text: str, *phases: str) -> None:
        seconds = sum(v for k, v in t.items() if any(k.startswith(p) for p in phases))
        day.add_row(what, text, f"{seconds:.1f}" if phases else "")

    row(
        "register",
        f"{f['buildings']} buildings, {f['households']:,} households, {f['residents']:,} residents "
        f"({f['elderly']:,} elderly, {f['regular_medication']:,} on regular medication, {f['bedridden']} bedridden, "
        f"{f['infants']} infants, {f['pregnant']} pregnant); {f['staff']} staff, {f['volunteers']} volunteers",
        "register",
        "staff",
        "volunteers",
        "API keys",
    )
    row("the bus", "testing, supplies and notify built their registers from juwei.residents", "the register")
    row("channels", f"{f['channels']} channels attached (local WeCom / DingTalk bots and e-mail lists)", "channels")
    row(
        "testing",
        f"{f['points']} points, {f['calls']} floor calls, {f['tubes']} tubes, {f['samples']:,} samples "
        f"({f['door_to_door']} at home); {f['tested']:,} tested, {f['listed_missing']} listed missing "
        f"in {f['households_listed']} households",
        "sampling",
        "PCR",
        "the lab",
    )
    row(
        "the case",
        f"case {outcome.case} in building {outcome.case_building}: {f['zone']['zone']} zone; "
        "transferred; disinfected with a photo",
        "building",
        "transfer",
    )
    row(
        "supplies",
        f"both shifts called in {f['both_shifts']} buildings; {f['delivery_failures']} failed "
        "deliveries followed up; donated masks to the sealed building",
        "government",
        "deliveries",
        "follow-ups",
        "donated",
    )
    reason = f["refusal_reason"].split(":")[0]
    row(
        "donations",
        f"accepted {', '.join(f['donation_accepted'])}; refused {', '.join(f['donation_refused'])} "
        f"({reason}); both on the public ledger",
        "donations",
    )
    row("medicine", f"{f['cards']} cards out and back, each with its owner", "medicine")
    row(
        "questions",
        f"{f['questions']} questions, {f['question_groups']} groups, {len(f['answers'])} answered",
        "residents' questions",
    )
    row(
        "notify",
        f"{f['messages']} messages to groups → {f['deliveries']:,} deliveries, {f['texts']:,} texts at "
        f"the sinks ({f['digests']} digests under the platforms' rate limits)",
        "every event",
        "messages",
    )
    row("in all", f"{f['requests']:,} HTTP requests", "the whole day")
    console.print(day)

    groups = Table(title="What each building's group received", title_justify="left")
    for column, justify in (
        ("building", "right"),
        ("implied", "right"),
        ("composed", "right"),
        ("chat", "right"),
        ("e-mail", "right"),
        ("what", "left"),
        ("", "left"),
    ):
        groups.add_column(column, justify=justify)  # type: ignore[arg-type]
    for g in outcome.groups:
        by = {ch.channel: ch for ch in g.channels}
        chat = next((ch for k, ch in by.items() if k != "email"), None)
        mail = by.get("email")

        def cell(ch: Any) -> str:
            if ch is None:
                return "—"
            got = sum(ch.received.values())
            return f"{got}" + (f" ({ch.digests} digest{'s' if ch.digests > 1 else ''})" if ch.digests else "")

        mark = "[green]✓[/]" if g.ok else "[red]✗ " + "; ".join(g.problems())[:120] + "[/]"
        groups.add_row(
            g.building,
            str(sum(g.implied.values())),
            str(len(g.composed)),
            f"{chat.channel if chat else ''} {cell(chat)}".strip(),
            cell(mail),
            g.kinds(),
            mark,
        )
    console.print(groups)
    verdict = (
        "[green]every group received exactly what concerns it, once[/]"
        if outcome.ok
        else "[red]some groups did not receive what the events imply (see above)[/]"
    )
    console.print(verdict)


def run_demo(options: Options, console: Console | None = None) -> Outcome:
    console = console or Console(stderr=True)
    outcome = Day(options, console).run()
    out = Console()
    if not out.is_terminal:
        out = Console(width=150)  # a log file or a pipe: room for the tables
    summary(outcome, out)
    return outcome


__all__ = ["DemoError", "Options", "Outcome", "Size", "run_demo"]
