"""The seed compound, made up but lifelike: buildings, households, residents with their needs, staff, volunteers.

Deterministic for a seed. At scale 1.0 it is the compound of ``DOMAIN.md``: 25 high-rises, about 2,000
households, 5,000 residents (about one in six elderly, a few bedridden, some infants and pregnant women),
7 committee staff each covering 4–5 buildings, and per building one information officer, a logistics
group of six in shifts A and B (one of them its leader) and a volunteer for the sampling point. Names,
phone numbers and ID-card numbers are invented but valid in form (the check digit is right): they go into
the residents import and nowhere else.
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许邓冯韩曹曾彭萧蔡潘田董袁于余叶蒋杜苏魏程吕丁沈任姚卢傅钟"
    "姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江阎薛尹段雷黎史龙陶贺顾毛郝龚邵万钱严覃武莫孔向汤"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国红梅文斌辉鹏宇浩晨欣怡佳琪子涵雨轩思源嘉诚俊"
# Districts of Shanghai, and a few provinces people moved from: the first six digits of an ID-card number.
REGIONS = (
    "310101",
    "310104",
    "310105",
    "310106",
    "310107",
    "310109",
    "310110",
    "310112",
    "310115",
    "320102",
    "330106",
    "340104",
    "420106",
    "510104",
)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
ELDERLY_AGE = 70
# Household sizes in a Shanghai compound (mean about 2.5 people).
SIZES = (1, 2, 3, 4, 5)
SIZE_WEIGHTS = (24, 31, 25, 12, 8)
SHIFTS = "AAABBB"  # the logistics group: three on shift A (the first leads), three on shift B


@dataclass(frozen=True)
class Size:
    """How big a compound to make; ``at(1.0)`` is the reference compound."""

    buildings: int = 25
    residents: int = 5000
    staff: int = 7
    points: int = 6
    medicine_cards: int = 30

    @classmethod
    def at(cls, scale: float) -> Size:
        if scale <= 0:
            raise ValueError("the scale must be above 0")
        buildings = max(2, round(25 * scale))
        return cls(
            buildings=buildings,
            residents=max(buildings * 8, round(5000 * scale)),
            staff=max(1, round(7 * buildings / 25)),
            points=min(6, buildings, max(2, round(6 * buildings / 25))),
            medicine_cards=max(3, round(30 * scale)),
        )


@dataclass(frozen=True)
class Building:
    building: str
    floors: int
    rooms_per_floor: int
    lifts: int
    lift_capacity: int


@dataclass(frozen=True)
class Person:
    resident: str
    household: str
    building: str
    floor: int
    room: int
    name: str
    phone: str
    id_number: str
    birth_year: int
    female: bool
    regular_medication: bool = False
    mobility_impaired: bool = False
    bedridden: bool = False
    pregnant: bool = False
    infant: bool = False
    representative: bool = False


@dataclass(frozen=True)
class Team:
    """A building's volunteers: the information officer, the logistics group, the sampling-point volunteer."""

    officer: str
    logistics: tuple[tuple[str, str, bool], ...]  # (volunteer, shift, leader)
    sampler: str

    @property
    def leader(self) -> str:
        return next(v for v, _shift, leader in self.logistics if leader)

    def shift(self, which: str) -> list[str]:
        return [v for v, shift, _leader in self.logistics if shift == which]


@dataclass
class Compound:
    compound: str
    today: date
    buildings: list[Building] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    staff: dict[str, list[str]] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)

    @property
    def households(self) -> dict[str, tuple[str, int, int]]:
        """household → (building, floor, room)."""
        return {p.household: (p.building, p.floor, p.room) for p in self.people}

    def members(self) -> dict[str, list[Person]]:
        found: dict[str, list[Person]] = {}
        for person in self.people:
            found.setdefault(person.household, []).append(person)
        return found

    def elderly(self, person: Person) -> bool:
        return self.today.year - person.birth_year >= ELDERLY_AGE

    def buildings_csv(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("building", "number", "floors", "rooms_per_floor", "lifts", "lift_capacity"))
        for b in self.buildings:
            writer.writerow((b.building, b.building, b.floors, b.rooms_per_floor, b.lifts, b.lift_capacity))
        return out.getvalue().encode()

    def residents_csv(self) -> bytes:
        """The committee's spreadsheet: one row per resident, flags as 是/blank the way it is typed in."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        flags = ("regular_medication", "mobility_impaired", "bedridden", "pregnant", "infant", "representative")
        writer.writerow(
            ("building", "floor", "room", "household", "resident", "name", "phone", "id_number", "birth_year", *flags)
        )
        for p in self.people:
            writer.writerow(
                (
                    p.building,
                    p.floor,
                    p.room,
                    p.household,
                    p.resident,
                    p.name,
                    p.phone,
                    p.id_number,
                    p.birth_year,
                    *("是" if getattr(p, flag) else "" for flag in flags),
                )
            )
        return out.getvalue().encode()


def id_check_char(first17: str) -> str:
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


class _Maker:
    def __init__(self, compound: str, today: date, seed: int) -> None:
        self.rng = random.Random(seed)
        self.made = Compound(compound, today)
        self.phones: set[str] = set()
        self.id_numbers: set[str] = set()

    def name(self, surname: str | None = None) -> str:
        given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
        return (surname or self.rng.choice(SURNAMES)) + given

    def phone(self) -> str:
        while True:
            number = "1" + self.rng.choice("3456789") + "".join(self.rng.choice("0123456789") for _ in range(9))
            if number not in self.phones:
                self.phones.add(number)
                return number

    def id_number(self, birth_year: int, female: bool) -> str:
        while True:
            first_day = date(birth_year, 1, 1)
            # Nobody is born after today: this year's babies were born before it.
            days = 365 if birth_year < self.made.today.year else max(1, (self.made.today - first_day).days + 1)
            born = first_day + timedelta(days=self.rng.randrange(days))
            serial = self.rng.randrange(0, 100) * 10 + self.rng.choice((0, 2, 4, 6, 8) if female else (1, 3, 5, 7, 9))
            first = f"{self.rng.choice(REGIONS)}{born:%Y%m%d}{serial:03d}"
            number = first + id_check_char(first)
            if number not in self.id_numbers:
                self.id_numbers.add(number)
                return number

    def ages(self, size: int) -> list[tuple[int, bool]]:
        """(age, female) of a household's members, head first: who lives together in a Shanghai flat."""
        rng = self.rng
        if size == 1:
            return [(rng.randint(70, 94) if rng.random() < 0.45 else rng.randint(24, 69), rng.random() < 0.55)]
        if size == 2:
            if rng.random() < 0.4:
                return [(rng.randint(68, 92), False), (rng.randint(66, 90), True)]
            return [(rng.randint(25, 69), False), (rng.randint(24, 67), True)]
        father, mother = rng.randint(28, 55), rng.randint(26, 52)
        members = [(father, False), (mother, True)]
        children = size - 2
        if size >= 4 and rng.random() < 0.55:
            members.append((rng.randint(max(66, father + 22), father + 38), rng.random() < 0.6))  # a grandparent
            children -= 1
        for _ in range(children):
            members.append((rng.randint(0, max(0, min(mother - 20, 25))), rng.random() < 0.5))
        return members

    def person(
        self,
        building: str,
        household: str,
        floor: int,
        room: int,
        serial: int,
        age: int,
        female: bool,
        surname: str,
        head: bool,
    ) -> Person:
        rng = self.rng
        year = self.made.today.year - age
        elderly = age >= ELDERLY_AGE
        return Person(
            resident=f"r{household[1:]}-{serial}",
            household=household,
            building=building,
            floor=floor,
            room=room,
            name=self.name(surname),
            phone="" if age < 12 else self.phone(),
            id_number=self.id_number(year, female),
            birth_year=year,
            female=female,
            regular_medication=rng.random() < (0.65 if elderly else 0.08 if age >= 40 else 0.01),
            mobility_impaired=rng.random() < (0.12 if elderly else 0.005),
            bedridden=elderly and rng.random() < 0.025,
            pregnant=female and 22 <= age <= 40 and rng.random() < 0.05,
            infant=age <= 1,
            representative=head,
        )


def make_compound(
    compound: str = "c1", size: Size | None = None, *, seed: int = 2022, today: date | None = None
) -> Compound:
    """A compound of ``size`` (default: the reference compound), the same every time for the same seed."""
    size = size or Size()
    maker = _Maker(compound, today or date.today(), seed)
    rng, made = maker.rng, maker.made
    share = [size.residents // size.buildings + (n < size.residents % size.buildings) for n in range(size.buildings)]
    for number in range(1, size.buildings + 1):
        building = str(number)
        left, sizes = share[number - 1], []
        while left > 0:
            sizes.append(min(left, rng.choices(SIZES, SIZE_WEIGHTS)[0]))
            left -= sizes[-1]
        rooms_per_floor = (4, 6, 4)[number % 3]
        floors = max(3, math.ceil(len(sizes) / rooms_per_floor / rng.uniform(0.86, 0.95)))
        lifts, capacity = ((3, 13) if floors > 25 else (2, 10)) if floors > 7 else (0, 0)
        made.buildings.append(Building(building, floors, rooms_per_floor, lifts, capacity))
        rooms = rng.sample([(f, r) for f in range(1, floors + 1) for r in range(1, rooms_per_floor + 1)], len(sizes))
        for (floor, room), household_size in zip(sorted(rooms), sizes, strict=True):
            household = f"h{building}-{floor:02d}{room:02d}"
            surname = rng.choice(SURNAMES)
            for serial, (age, female) in enumerate(maker.ages(household_size), start=1):
                # A spouse keeps their own surname; children and grandparents on the father's side share it.
                own = rng.choice(SURNAMES) if serial == 2 else surname
                made.people.append(
                    maker.person(building, household, floor, room, serial, age, female, own, head=serial == 1)
                )
        made.teams[building] = Team(
            officer=f"v{building}-io",
            logistics=tuple((f"v{building}-l{n}", SHIFTS[n - 1], n == 1) for n in range(1, 7)),
            sampler=f"v{building}-sp",
        )
    made.staff = cover(list(made.teams), size.staff)
    return made


def cover(buildings: list[str], staff: int) -> dict[str, list[str]]:
    """Each staff member a run of neighbouring buildings, at least 4 where there are that many (runs may overlap)."""
    count = len(buildings)
    starts = [round(k * count / staff) for k in range(staff)] + [count]
    least = min(4, count)
    return {
        f"s{k + 1}": [buildings[(starts[k] + j) % count] for j in range(max(least, starts[k + 1] - starts[k]))]
        for k in range(staff)
    }
