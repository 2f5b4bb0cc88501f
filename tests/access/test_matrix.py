"""Every role × every endpoint of the four services × own / other building / other compound.

What each route admits is read from the route itself: the ``require(...)`` dependency in its dependency tree
carries the roles (``dependency.juwei_roles``). The scope rules are the README's: a key outside its
compound, or outside the buildings it is limited to, gets 403; a sampling volunteer's key acts only at its
point and a household's key speaks only for its household (testing's key bindings); in residents, staff keys
limited to some buildings read and edit only those (issue 15; they read the whole compound before). The
feed of each service refuses the roles whose work needs none of its events (``FEED_READERS``, the README's
access table written out here, not read from the code). So the expected answer of each call is derived,
never listed by hand, and a new route fails this test until it has a request below.

Allowed calls must succeed (2xx): each is a real request on fresh data, so the test also proves that every
role can do what it is meant to. Every write records the calling key as the actor of each event it appends.
Unknown, malformed, revoked and expired keys get 401 on every protected route; no key at all gets 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from contracts import roles as r
from contracts.testing import LINK_SECRET, disinfection_photo_path
from juwei.auth import revoke_key, rotate_key
from juwei.signed_links import signed_query
from juwei.store import events_table
from services.residents.views import zone_alerts
from tests.access.seed import C, Seeded, attach_channel, confirmed_case, medicine_request, png, seed
from tests.access.world import PROBLEM, SERVICES, World, default_holder

OWN, OTHER_BUILDING, OTHER_COMPOUND = "own", "other building", "other compound"
# Roles whose keys a compound hands to people who act on some buildings only.
BUILDING_ROLES = (r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER, r.HOUSEHOLD)
PUBLIC = None  # a route without ``require``: open to anyone (health, metrics, the board behind its token)


# ---------------------------------------------------------------------- what each route admits


def _dependencies(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def admitted_roles(route: APIRoute) -> frozenset[str] | None:
    """The roles of the route's ``require(...)``; an empty set admits every key, None means no key needed."""
    found = [getattr(sub.call, "juwei_roles", None) for sub in _dependencies(route.dependant)]
    declared = [roles for roles in found if roles is not None]
    assert len(declared) <= 1, f"{route.path} declares its roles twice"
    return declared[0] if declared else PUBLIC


def routes(world: World) -> dict[tuple[str, str, str], frozenset[str] | None]:
    """(service, method, path template) → admitted roles, for every route each app serves."""
    out = {}
    for name, client in world.clients.items():
        for context in iter_route_contexts(client.app.routes):
            route = getattr(context, "route", context)
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods:
                    out[(name, method, route.path)] = admitted_roles(route)
    return out


# ---------------------------------------------------------------------- keys: role × scope


@dataclass(frozen=True)
class KeySpec:
    role: str
    variant: str
    compound: str | None
    buildings: tuple[str, ...] | None
    point: str | None = None
    household: str | None = None


def key_specs() -> list[KeySpec]:
    specs = [KeySpec(r.DISTRICT_OPERATOR, OWN, None, None)]
    for role in r.ALL:
        if role == r.DISTRICT_OPERATOR:
            continue
        for variant, compound, own_building in ((OWN, "c1", "b1"), (OTHER_BUILDING, "c1", "b2"),
                                                (OTHER_COMPOUND, "c2", "b1")):  # fmt: skip
            limited = role in BUILDING_ROLES or variant == OTHER_BUILDING
            buildings = (own_building,) if limited else None
            point = ("p1" if own_building == "b1" else "p2") if role == r.SAMPLING_VOLUNTEER else None
            if role == r.SAMPLING_VOLUNTEER:
                buildings = None  # a point's key names a point, not buildings
            household = f"h{own_building[1]}-0101" if role == r.HOUSEHOLD else None
            specs.append(KeySpec(role, variant, compound, buildings, point, household))
    return specs


# ---------------------------------------------------------------------- requests, one per route


@dataclass
class Req:
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    building: str | None = None  # the building the request acts on (local id), if any
    point: str | None = None  # the sampling point it acts at
    household: str | None = None  # the household it speaks for
    feed: str | None = None  # the service whose feed (page or stream) this is
    health: bool = False  # it shows health data: another system's key needs a grant with health (these have none)
    ok: frozenset[int] = frozenset({200, 201, 204})
    stream: bool = False
    after: Callable[[], None] | None = None  # puts back what the call changed for everyone


@dataclass
class Ctx:
    world: World
    seeded: Seeded
    spec: KeySpec
    fresh: bool  # the call is expected to pass: make what it acts on anew

    @property
    def pool(self) -> Any:
        return self.seeded.pool

    def ok(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.world.ok(service, method, path, **kwargs)

    def household(self, members: int = 1) -> tuple[str, list[str]]:
        """A new household in b1 with ``members`` new residents (made by the operator)."""
        home = self.pool.fresh("hx")
        floor, room = self.pool.room("b1")
        self.ok("residents", "POST", f"{C}/households", json={"household": home, "building": "b1", "floor": floor,
                                                            "room": room})  # fmt: skip
        people = []
        for _ in range(members):
            person = self.pool.fresh("rx")
            self.ok(
                "residents",
                "POST",
                f"{C}/households/{home}/residents",
                json={"resident": person, "name": "王建国", "phone": "13800138000", "birth_year": 1950},
            )
            people.append(person)
        return home, people

    def resident(self) -> tuple[str, str]:
        if not self.fresh:
            return "h1-0101", self.seeded.households["h1-0101"][0]
        home, people = self.household()
        return home, people[0]

    def round(self, kind: str = "pcr", plan: bool = False) -> str:
        if not self.fresh:
            return "R1" if kind == "pcr" else "A1"
        made = self.pool.fresh("rd")
        self.ok("testing", "POST", f"{C}/rounds", json={"round": made, "kind": kind, "starts_at": "2022-04-12T07:00",
                                                        "points": ["p1", "p2"]})  # fmt: skip
        if plan:
            self.ok("testing", "POST", f"{C}/rounds/{made}/plan")
        return made

    def case(self) -> str:
        return confirmed_case(self.world, self.pool) if self.fresh else self.seeded.case

    def point(self) -> str:
        if not self.fresh:
            return "p1"
        made = self.pool.fresh("px")
        self.ok("testing", "POST", f"{C}/points", json={"point": made, "name": made, "location": "x", "throughput": 2})
        return made

    def tube(self, result: str | None = None) -> str:
        if not self.fresh:
            return "T0"
        made, round_ = self.pool.fresh("TX"), self.round()
        self.ok("testing", "POST", f"{C}/rounds/{round_}/samples",
                json={"tube": made, "residents": [self.seeded.households["h1-0102"][1]], "point": "p1"})  # fmt: skip
        if result:
            self.ok("testing", "POST", f"{C}/tubes/{made}/result", json={"result": result})
        return made

    def card(self, state: str) -> str:
        """A resident whose medicine card is in ``state``: requested, collected, subdistrict, bought, back."""
        if not self.fresh:
            return self.seeded.card
        person = self.pool.resident()
        medicine_request(self.world, person, self.pool)
        steps = ["requested", "collected", "subdistrict", "bought", "back"]
        for step in steps[1 : steps.index(state) + 1]:
            if step == "collected":
                self.ok("supplies", "POST", f"{C}/cards/{person}/collection", json={"leader": "lb1a1"})
            elif step == "subdistrict":
                self.ok("supplies", "POST", f"{C}/card-handovers", json=handover(self.pool.fresh("ho"), person))
            elif step == "bought":
                request = self._request_of(person)
                self.ok("supplies", "POST", f"{C}/medicine-requests/{request}/purchase",
                        json={"buyer": {"kind": "subdistrict", "id": "sd-wang"}})  # fmt: skip
            else:
                self.ok("supplies", "POST", f"{C}/card-handovers",
                        json=handover(self.pool.fresh("ho"), person, back=True))  # fmt: skip
        return person

    def _request_of(self, person: str) -> str:
        rows = self.ok("supplies", "GET", f"{C}/buildings/b1/medicine-requests")["requests"]
        return next(row["request"] for row in rows if row["resident"] == person)


def handover(name: str, person: str, back: bool = False) -> dict[str, Any]:
    volunteer, subdistrict = {"kind": "volunteer", "id": "lb1a1"}, {"kind": "subdistrict", "id": "sd-wang"}
    giver, receiver = (subdistrict, volunteer) if back else (volunteer, subdistrict)
    return {"handover": name, "giver": giver, "receiver": receiver, "cards": [person]}


Maker = Callable[[Ctx], Req]
CASES: dict[tuple[str, str, str], Maker] = {}


def case(service: str, method: str, path: str) -> Callable[[Maker], Maker]:
    def register(make: Maker) -> Maker:
        CASES[(service, method, path)] = make
        return make

    return register


P = "/compounds/{compound}"
ON_SHIFT = "lb1b2"  # shift B carries on 2022-04-12 (rota AB from 2022-04-01)

# --- every service: operations and the feed


for _service in SERVICES:
    for _path in ("/healthz", "/status", "/metrics"):
        case(_service, "GET", _path)(lambda ctx, path=_path: Req(path))
    case(_service, "GET", "/readyz")(lambda ctx: Req("/readyz", ok=frozenset({200, 503})))  # no Kafka here
    case(_service, "GET", "/events")(lambda ctx, service=_service: Req("/events?limit=5", feed=service))
    case(_service, "GET", "/events/stream")(
        lambda ctx, service=_service: Req("/events/stream", stream=True, feed=service)
    )
    case(_service, "GET", P + "/sensitive-reads")(lambda ctx: Req(f"{C}/sensitive-reads"))
    case(_service, "GET", P + "/events/{event_id}/actor")(
        lambda ctx, service=_service: Req(f"{C}/events/{_event_in_b1(ctx, service)}/actor", building="b1")
    )
    case(_service, "GET", "/whoami")(lambda ctx: Req("/whoami"))
    case(_service, "POST", P + "/keys")(lambda ctx: Req(f"{C}/keys", {"json": INVITE}, building="b1"))
    case(_service, "DELETE", P + "/keys/{key_id}")(lambda ctx: _key_to_revoke(ctx))


INVITE = {"role": r.HOUSEHOLD, "holder": {"kind": "household", "id": "h1-0101"}, "buildings": ["b1"], "expires_in": 60}


def _key_to_revoke(ctx: Ctx) -> Req:
    """Staff revoke a household's key of b1; anyone else signs out a key of their own."""
    spec = ctx.spec
    if spec.role in r.STAFF:
        made = ctx.world.key(r.HOUSEHOLD, "c1", ["b1"], holder=default_holder(r.HOUSEHOLD, "c1", "h1-0101", None))
        return Req(f"{C}/keys/{made.split('_')[1]}", building="b1")
    buildings = list(spec.buildings) if spec.buildings else None
    made = ctx.world.key(spec.role, spec.compound, buildings,
                         holder=default_holder(spec.role, spec.compound, spec.household, None))  # fmt: skip
    return Req(f"{C}/keys/{made.split('_')[1]}")


# The roles whose work needs some events of each service's feed (the README's table); the others get 403.
EVERYWHERE = {r.DISTRICT_OPERATOR, r.COMMITTEE_STAFF, r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER}
FEED_READERS = {
    "residents": EVERYWHERE | {r.HOUSEHOLD, r.SUBDISTRICT_STAFF},
    "supplies": EVERYWHERE | {r.HOUSEHOLD, r.SUBDISTRICT_STAFF},
    "testing": EVERYWHERE | {r.HOUSEHOLD, r.SAMPLING_VOLUNTEER, r.SUBDISTRICT_STAFF},
    "notify": EVERYWHERE,
}


def _event_in_b1(ctx: Ctx, service: str) -> str:
    """The id of the first event the service recorded about building b1 of c1."""
    runtime = ctx.world.runtimes[service]
    with runtime.database.reading() as session:
        return str(
            session.execute(
                select(events_table.c.id)
                .where(events_table.c.building == "c1:b1")
                .order_by(events_table.c.position)
                .limit(1)
            ).scalar_one()
        )


# --- residents


@case("residents", "POST", P + "/buildings")
def _(ctx: Ctx) -> Req:
    made = ctx.pool.fresh("bx") if ctx.fresh else "bx0"
    body = {"building": made, "number": made, "floors": 6, "rooms_per_floor": 4, "lifts": 1, "lift_capacity": 8}
    return Req(f"{C}/buildings", {"json": body}, building=made)


@case("residents", "GET", P + "/buildings")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings")


@case("residents", "GET", P + "/buildings/{building}/households")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/households", building="b1")


@case("residents", "POST", P + "/households")
def _(ctx: Ctx) -> Req:
    floor, room = ctx.pool.room("b1") if ctx.fresh else (20, 4)
    body = {"household": ctx.pool.fresh("hx"), "building": "b1", "floor": floor, "room": room}
    return Req(f"{C}/households", {"json": body}, building="b1")


@case("residents", "POST", P + "/households/{household}/representative")
def _(ctx: Ctx) -> Req:
    home, person = ctx.resident()
    return Req(f"{C}/households/{home}/representative", {"json": {"resident": person}}, building="b1")


@case("residents", "POST", P + "/households/{household}/residents")
def _(ctx: Ctx) -> Req:
    home = ctx.household(0)[0] if ctx.fresh else "h1-0101"
    body = {"resident": ctx.pool.fresh("rx"), "name": "李秀英", "phone": "13900139000", "birth_year": 1948}
    return Req(f"{C}/households/{home}/residents", {"json": body}, building="b1")


@case("residents", "PATCH", P + "/households/{household}/residents/{resident}/needs")
def _(ctx: Ctx) -> Req:
    home, person = ctx.resident()
    return Req(f"{C}/households/{home}/residents/{person}/needs", {"json": {"pregnant": True}}, building="b1")


@case("residents", "POST", P + "/households/{household}/residents/{resident}/move")
def _(ctx: Ctx) -> Req:
    home, person = ctx.resident()
    target = ctx.household(0)[0] if ctx.fresh else "h1-0102"
    return Req(f"{C}/households/{home}/residents/{person}/move", {"json": {"to_household": target}}, building="b1")


@case("residents", "PUT", P + "/households/{household}/residents/{resident}/identity")
def _(ctx: Ctx) -> Req:
    home, person = ctx.resident()
    body = {"name": "张三", "phone": "13700137000"}
    return Req(f"{C}/households/{home}/residents/{person}/identity", {"json": body}, building="b1")


@case("residents", "DELETE", P + "/residents/{resident}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/residents/{ctx.resident()[1]}", building="b1")


@case("residents", "GET", P + "/residents/{resident}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/residents/{ctx.seeded.households['h1-0102'][0]}", building="b1")


@case("residents", "GET", P + "/buildings/{building}/medicine-survey")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/medicine-survey", building="b1", health=True)


@case("residents", "POST", P + "/residents/{resident}/medicine-asked")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/residents/{ctx.resident()[1]}/medicine-asked", {"json": {}}, building="b1")


@case("residents", "GET", P + "/identity-reads")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/identity-reads")


@case("residents", "POST", P + "/import")
def _(ctx: Ctx) -> Req:
    sheet = b"building,number,floors,rooms_per_floor,lifts,lift_capacity\nb1,1,20,4,1,8\n"
    params = {"params": {"kind": "buildings"}, "content": sheet, "headers": {"content-type": "text/csv"}}
    return Req(f"{C}/import", params, building="b1")


@case("residents", "POST", P + "/imports/preview")
def _(ctx: Ctx) -> Req:
    sheet = "楼号,房号,姓名,出生日期\n1,0102,张三,1980\n".encode()
    return Req(f"{C}/imports/preview", {"content": sheet, "headers": {"content-type": "text/csv"}})


@case("residents", "GET", P + "/imports/template")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/imports/template")


@case("residents", "PUT", P + "/staff/{staff}/buildings")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/staff/{ctx.pool.fresh('s')}/buildings", {"json": {"buildings": ["b1", "b2"]}})


@case("residents", "GET", P + "/coverage")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/coverage")


@case("residents", "POST", P + "/volunteers")
def _(ctx: Ctx) -> Req:
    body = {"volunteer": ctx.pool.fresh("v"), "building": "b1", "skills": ["spreadsheets"]}
    return Req(f"{C}/volunteers", {"json": body}, building="b1")


@case("residents", "DELETE", P + "/volunteers/{volunteer}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/volunteers/{_volunteer(ctx, 'sampling_point')}", building="b1")


@case("residents", "GET", P + "/volunteers")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/volunteers")


def _volunteer(ctx: Ctx, role: str | None = None) -> str:
    if not ctx.fresh:
        return "lb1b2"
    made = ctx.pool.fresh("v")
    ctx.ok("residents", "POST", f"{C}/volunteers", json={"volunteer": made, "building": "b1", "skills": []})
    if role:
        ctx.ok("residents", "PUT", f"{C}/buildings/b1/roles/{made}", json={"role": role})
    return made


def _work_group(ctx: Ctx) -> str:
    """The work group "wg1" (naming it again records nothing)."""
    ctx.ok("residents", "PUT", f"{C}/work-groups/wg1", json={"name": "数据录入"})
    return "wg1"


@case("residents", "PUT", P + "/work-groups/{group}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/work-groups/{ctx.pool.fresh('wg')}", {"json": {"name": "宣传"}})


@case("residents", "GET", P + "/work-groups")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/work-groups")


@case("residents", "PUT", P + "/work-groups/{group}/members/{volunteer}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/work-groups/{_work_group(ctx)}/members/{_volunteer(ctx)}", building="b1")


@case("residents", "DELETE", P + "/work-groups/{group}/members/{volunteer}")
def _(ctx: Ctx) -> Req:
    group, volunteer = _work_group(ctx), _volunteer(ctx)
    if ctx.fresh:
        ctx.ok("residents", "PUT", f"{C}/work-groups/{group}/members/{volunteer}")
    return Req(f"{C}/work-groups/{group}/members/{volunteer}", building="b1")


@case("residents", "PUT", P + "/volunteers/{volunteer}/availability")
def _(ctx: Ctx) -> Req:
    body = {"slots": [{"days": ["mon", "sat"], "start": "08:00", "end": "12:00"}]}
    return Req(f"{C}/volunteers/{_volunteer(ctx)}/availability", {"json": body}, building="b1")


@case("residents", "GET", P + "/volunteer-suggestions")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/volunteer-suggestions", {"params": {"skill": "spreadsheets", "day": "mon", "start": "08:00",
                                                         "end": "10:00"}})  # fmt: skip


@case("residents", "PUT", P + "/buildings/{building}/roles/{volunteer}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/roles/{_volunteer(ctx)}", {"json": {"role": "sampling_point"}}, building="b1")


@case("residents", "DELETE", P + "/buildings/{building}/roles/{volunteer}/{role}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/roles/{_volunteer(ctx, 'sampling_point')}/sampling_point", building="b1")


@case("residents", "GET", P + "/buildings/{building}/roles")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/roles", building="b1")


@case("residents", "GET", P + "/zones")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/zones")


@case("residents", "GET", P + "/registration")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/registration")


@case("residents", "PUT", P + "/registration")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/registration", {"json": {"subdistrict": "s1", "name": "石泉小区"}})


@case("residents", "PUT", P + "/zone-rules")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/zone-rules", {"json": {"sealed_days": 7, "precaution_days": 14}})


@case("residents", "GET", "/subdistricts/{subdistrict}/compounds")
def _(ctx: Ctx) -> Req:
    return Req("/subdistricts/s1/compounds")


@case("residents", "GET", P + "/buildings/{building}/zone")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/zone")  # "when can we go out?" is asked of any building of the compound


@case("residents", "POST", P + "/zones/decisions")
def _(ctx: Ctx) -> Req:
    body = {"building": "b3", "zone": "precaution", "reason": "街道通知 第3号"}
    return Req(f"{C}/zones/decisions", {"json": body}, building="b3")


@case("residents", "GET", P + "/cap")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/cap?limit=5")  # zone alerts are public to every key of the compound, like the board


@case("residents", "GET", P + "/cap/{identifier}.xml")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/cap/{_zone_alert(ctx)}.xml")


def _zone_alert(ctx: Ctx) -> str:
    """The identifier of c1's first zone alert (the seed's confirmed case sealed b1)."""
    ctx.world.pump()
    with ctx.world.runtimes["residents"].database.reading() as session:
        found = session.execute(
            select(zone_alerts.c.identifier)
            .where(zone_alerts.c.compound == "c1")
            .order_by(zone_alerts.c.position)
            .limit(1)
        ).scalar()
    assert found is not None, "no zone alert in c1"
    return str(found)


# --- supplies


@case("supplies", "GET", P + "/supply-policy")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/supply-policy")


@case("supplies", "PUT", P + "/supply-policy")
def _(ctx: Ctx) -> Req:
    body = {"rota_pattern": "AB", "rota_starts_on": "2022-04-01", "both_shifts_households": 60,
            "both_shifts_items": 300, "card_return_hours": 48,
            "donation_categories": ["masks", "antigen_kits"]}  # fmt: skip
    return Req(f"{C}/supply-policy", {"json": body})


@case("supplies", "GET", P + "/rota")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/rota")


def _batch(ctx: Ctx, planned: bool = False) -> str:
    if not ctx.fresh:
        return "B0"
    made = ctx.pool.fresh("B")
    ctx.ok("supplies", "POST", f"{C}/batches", json={"batch": made, "source": "government", "whole_compound": True,
                                                     "items": [{"item": "eggs", "quantity": 100}]})  # fmt: skip
    if planned:
        ctx.ok("supplies", "POST", f"{C}/batches/{made}/allocation", json={"method": "equal"})
    return made


@case("supplies", "POST", P + "/batches")
def _(ctx: Ctx) -> Req:
    body = {"batch": ctx.pool.fresh("B"), "source": "government", "whole_compound": True,
            "items": [{"item": "vegetables", "quantity": 180, "unit": "box"}]}  # fmt: skip
    return Req(f"{C}/batches", {"json": body})


@case("supplies", "POST", P + "/batches/{batch}/allocation")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/batches/{_batch(ctx)}/allocation", {"json": {"method": "household_size"}})


@case("supplies", "POST", P + "/batches/{batch}/dispatch")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/batches/{_batch(ctx, planned=True)}/dispatch", {"json": {}})


for _path in ("/batches", "/batches/B0", "/batches/B0/allocation", "/batches/B0/progress", "/follow-ups",
              "/medicine/outstanding", "/cards", "/ledger"):  # fmt: skip
    _template = P + _path.replace("B0", "{batch}")
    case("supplies", "GET", _template)(lambda ctx, path=_path: Req(C + path))


@case("supplies", "POST", P + "/batches/{batch}/buildings/{building}/outcomes")
def _(ctx: Ctx) -> Req:
    body = {"volunteer": ON_SHIFT, "outcomes": [{"household": "h1-0201", "outcome": "delivered"}]}
    batch = "B0"
    if ctx.fresh:
        batch = _batch(ctx, planned=True)
        ctx.ok("supplies", "POST", f"{C}/batches/{batch}/dispatch", json={})
    return Req(f"{C}/batches/{batch}/buildings/b1/outcomes", {"json": body}, building="b1")


@case("supplies", "POST", P + "/batches/{batch}/buildings/{building}/follow-ups/{household}/resolution")
def _(ctx: Ctx) -> Req:
    batch, home = "B0", ctx.seeded.follow_up
    if ctx.fresh:
        batch = _batch(ctx, planned=True)
        ctx.ok("supplies", "POST", f"{C}/batches/{batch}/dispatch", json={})
        ctx.ok("supplies", "POST", f"{C}/batches/{batch}/buildings/b1/outcomes",
               json={"outcomes": [{"household": home, "outcome": "no_one_home"}]})  # fmt: skip
    body = {"resolution": "collected", "volunteer": ON_SHIFT}
    return Req(f"{C}/batches/{batch}/buildings/b1/follow-ups/{home}/resolution", {"json": body}, building="b1")


@case("supplies", "GET", P + "/buildings/{building}/deliveries")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/deliveries", building="b1")


@case("supplies", "POST", P + "/medicine-requests")
def _(ctx: Ctx) -> Req:
    person = ctx.pool.resident() if ctx.fresh else ctx.seeded.households["h1-0102"][0]
    body = {"request": ctx.pool.fresh("m"), "resident": person, "medicine": "二甲双胍", "quantity": "1 box",
            "hospital": "瑞金医院"}  # fmt: skip
    if ctx.spec.role == r.INFORMATION_OFFICER:
        body["officer"] = "ob1"  # an officer's key names no person: the officer says who they are
    return Req(f"{C}/medicine-requests", {"json": body}, building="b1")


@case("supplies", "GET", P + "/buildings/{building}/medicine-requests")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/medicine-requests", building="b1")


@case("supplies", "POST", P + "/cards/{resident}/collection")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/cards/{ctx.card('requested')}/collection", {"json": {"leader": "lb1a1"}}, building="b1")


@case("supplies", "POST", P + "/card-handovers")
def _(ctx: Ctx) -> Req:
    back = ctx.spec.role == r.SUBDISTRICT_STAFF
    person = ctx.card("bought" if back else "collected")
    return Req(f"{C}/card-handovers", {"json": handover(ctx.pool.fresh("ho"), person, back=back)}, building="b1")


@case("supplies", "POST", P + "/medicine-requests/{medicine_request}/purchase")
def _(ctx: Ctx) -> Req:
    request = ctx._request_of(ctx.card("subdistrict")) if ctx.fresh else ctx.seeded.medicine
    body = {"buyer": {"kind": "subdistrict", "id": "sd-wang"}}
    return Req(f"{C}/medicine-requests/{request}/purchase", {"json": body}, building="b1")


@case("supplies", "POST", P + "/cards/{resident}/return")
def _(ctx: Ctx) -> Req:
    giver = {"kind": "volunteer", "id": "lb1a1"}
    return Req(f"{C}/cards/{ctx.card('back')}/return", {"json": {"giver": giver}}, building="b1")


@case("supplies", "GET", P + "/cards/{resident}/history")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/cards/{ctx.card('requested')}/history", building="b1")


@case("supplies", "POST", P + "/donations")
def _(ctx: Ctx) -> Req:
    body = {"donation": ctx.pool.fresh("d"), "donor": "donor-1", "donor_name": "爱心企业",
            "items": [{"category": "masks", "item": "kn95", "quantity": 100}]}  # fmt: skip
    return Req(f"{C}/donations", {"json": body})


def _donation(ctx: Ctx) -> str:
    made = ctx.pool.fresh("d")
    if ctx.fresh:
        ctx.ok("supplies", "POST", f"{C}/donations", json={"donation": made, "donor": made, "donor_name": "王先生",
               "items": [{"category": "masks", "item": "kn95", "quantity": 10}]})  # fmt: skip
    return made


@case("supplies", "GET", P + "/donations/{donation}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/donations/{_donation(ctx)}")


@case("supplies", "DELETE", P + "/donors/{donor}/name")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/donors/{_donation(ctx)}/name")


# --- testing


@case("testing", "POST", P + "/points")
def _(ctx: Ctx) -> Req:
    made = ctx.pool.fresh("px")
    return Req(f"{C}/points", {"json": {"point": made, "name": made, "location": "north gate", "throughput": 3}})


@case("testing", "PATCH", P + "/points/{point}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/points/{ctx.point()}", {"json": {"throughput": 5}})


@case("testing", "POST", P + "/points/{point}/close")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/points/{ctx.point()}/close", {"json": {"reason": "rain"}})


@case("testing", "PUT", P + "/points/{point}/buildings")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/points/{ctx.point()}/buildings", {"json": {"buildings": ["b3"]}}, after=_reassign(ctx))


@case("testing", "POST", P + "/points/{point}/keys")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/points/{ctx.point()}/keys")


def _reassign(ctx: Ctx) -> Callable[[], None]:
    def put_back() -> None:
        for point, building in (("p1", "b1"), ("p2", "b2")):
            ctx.ok("testing", "PUT", f"{C}/points/{point}/buildings", json={"buildings": [building]})

    return put_back


@case("testing", "POST", P + "/assignment/proposal")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/assignment/proposal", after=_reassign(ctx))


for _path in ("/points", "/assignment/proposal", "/rounds", "/rounds/R1", "/rounds/R1/plan", "/rounds/R1/door-to-door",
              "/rounds/R1/coverage", "/rounds/R1/counts", "/cases", "/unreached-households"):  # fmt: skip
    case("testing", "GET", P + _path.replace("R1", "{round}"))(lambda ctx, path=_path: Req(C + path))


@case("testing", "POST", P + "/rounds")
def _(ctx: Ctx) -> Req:
    body = {"round": ctx.pool.fresh("rd"), "starts_at": "2022-04-13T07:00", "points": ["p1", "p2"]}
    return Req(f"{C}/rounds", {"json": body})


@case("testing", "POST", P + "/rounds/{round}/plan")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/rounds/{ctx.round()}/plan")


@case("testing", "POST", P + "/rounds/{round}/points/{point}/calls/next")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/rounds/{ctx.round(plan=True)}/points/p1/calls/next", point="p1")


@case("testing", "POST", P + "/rounds/{round}/samples")
def _(ctx: Ctx) -> Req:
    body = {"tube": ctx.pool.fresh("TX"), "residents": [ctx.seeded.households["h1-0102"][0]], "point": "p1"}
    return Req(f"{C}/rounds/{ctx.round()}/samples", {"json": body}, point="p1")


@case("testing", "POST", P + "/tubes/{tube}/result")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/tubes/{ctx.tube()}/result", {"json": {"result": "negative"}})


@case("testing", "POST", P + "/rounds/{round}/tubes")
def _(ctx: Ctx) -> Req:
    tube = {"tube": ctx.pool.fresh("TX"), "residents": [ctx.seeded.households["h1-0102"][0]]}
    return Req(f"{C}/rounds/{ctx.round()}/tubes", {"json": {"point": "p1", "tubes": [tube]}}, point="p1")


@case("testing", "POST", P + "/plates/{plate}/results")
def _(ctx: Ctx) -> Req:
    plate = {"results": [{"tube": ctx.tube(), "result": "negative", "well": "A1"}]}
    return Req(f"{C}/plates/{ctx.pool.fresh('PL')}/results", {"json": plate})


@case("testing", "POST", P + "/lab-files")
def _(ctx: Ctx) -> Req:
    sheet = f"试管号,检测结果,检测时间\n{ctx.tube()},阴性,2022-04-12 18:30\n".encode()
    # The tube holds a resident of b1: a key limited to other buildings may not record its result.
    return Req(f"{C}/lab-files", {"content": sheet, "headers": {"content-type": "text/csv"}}, building="b1")


@case("testing", "POST", P + "/rounds/{round}/residents/{resident}/result")
def _(ctx: Ctx) -> Req:
    round_, person = "R1", ctx.seeded.households["h1-0102"][0]
    if ctx.fresh:  # a positive pool: its members are sampled again alone, and the lab reports each of them
        round_, person = ctx.round(), ctx.pool.resident()
        pooled, alone = ctx.pool.fresh("TX"), ctx.pool.fresh("TX")
        ctx.ok("testing", "POST", f"{C}/rounds/{round_}/samples",
               json={"tube": pooled, "residents": [person, ctx.pool.resident()], "point": "p1"})  # fmt: skip
        ctx.ok("testing", "POST", f"{C}/tubes/{pooled}/result", json={"result": "positive"})
        ctx.ok("testing", "POST", f"{C}/rounds/{round_}/samples",
               json={"tube": alone, "residents": [person], "point": "p1"})  # fmt: skip
    return Req(f"{C}/rounds/{round_}/residents/{person}/result", {"json": {"result": "negative"}})


@case("testing", "GET", P + "/tubes/{tube}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/tubes/T0")


@case("testing", "POST", P + "/households/{household}/keys")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/households/h1-0102/keys", building="b1")


def _antigen(ctx: Ctx, photo: bool) -> tuple[str, str]:
    """(round, resident of h1-0101): a fresh antigen round where that member reported, with a photo."""
    round_ = ctx.round("antigen")
    person = ctx.seeded.households["h1-0101"][0]
    if ctx.fresh:
        files = {"photo": ("cassette.png", png(), "image/png")} if photo else None
        ctx.ok("testing", "POST", f"{C}/rounds/{round_}/households/h1-0101/antigen",
               data={"resident": person, "result": "negative"}, files=files)  # fmt: skip
    return round_, person


@case("testing", "POST", P + "/rounds/{round}/households/{household}/antigen")
def _(ctx: Ctx) -> Req:
    form = {"data": {"resident": ctx.seeded.households["h1-0101"][0], "result": "negative"},
            "files": {"photo": ("cassette.png", png(), "image/png")}}  # fmt: skip
    return Req(f"{C}/rounds/{ctx.round('antigen')}/households/h1-0101/antigen", form, building="b1",
               household="h1-0101")  # fmt: skip


@case("testing", "GET", P + "/rounds/{round}/households/{household}/antigen")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/rounds/{_antigen(ctx, False)[0]}/households/h1-0101/antigen", building="b1", household="h1-0101")


@case("testing", "GET", P + "/rounds/{round}/households/{household}/antigen/{resident}/photo")
def _(ctx: Ctx) -> Req:
    round_, person = _antigen(ctx, True)
    return Req(f"{C}/rounds/{round_}/households/h1-0101/antigen/{person}/photo", building="b1", household="h1-0101")


for _resource in ("Observation", "DiagnosticReport"):
    case("testing", "GET", P + f"/fhir/{_resource}")(
        lambda ctx, resource=_resource: Req(f"{C}/fhir/{resource}?round=R1&_count=5", health=True)
    )


@case("testing", "GET", P + "/cases/{case}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/cases/{ctx.seeded.case}")


@case("testing", "GET", P + "/case-counts")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/case-counts")


@case("testing", "POST", P + "/cases/{case}/transfer")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/cases/{ctx.case()}/transfer", {"json": {"scheduled_at": "2022-04-12T14:00"}})


@case("testing", "POST", P + "/cases/{case}/transferred")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/cases/{ctx.case()}/transferred", {"json": {"facility": "central isolation"}})


@case("testing", "POST", P + "/cases/{case}/close")
def _(ctx: Ctx) -> Req:
    made = ctx.case()
    if ctx.fresh:
        ctx.ok("testing", "POST", f"{C}/cases/{made}/transferred", json={"facility": "central isolation"})
    return Req(f"{C}/cases/{made}/close", {"json": {"outcome": "recovered"}})


def _home(ctx: Ctx) -> str:
    return ctx.household(0)[0] if ctx.fresh else "h1-0101"


@case("residents", "PUT", P + "/households/{household}/unreachable")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/households/{_home(ctx)}/unreachable", {"json": {"reason": "no_smartphone"}}, building="b1")


@case("residents", "DELETE", P + "/households/{household}/unreachable")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/households/{_home(ctx)}/unreachable", building="b1")


@case("testing", "GET", P + "/buildings/{building}/cases")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/cases")  # how many cases and when they leave, never who: the whole compound


@case("testing", "POST", P + "/buildings/{building}/disinfections")
def _(ctx: Ctx) -> Req:
    form = {"data": {"areas": ["lobby", "lifts"]}, "files": [("photos", ("lobby.png", png(), "image/png"))]}
    return Req(f"{C}/buildings/b1/disinfections", form, building="b1")


@case("testing", "GET", P + "/buildings/{building}/disinfections")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/disinfections")  # shown on the building's board: compound-wide


@case("testing", "GET", "/photos/{compound}/{disinfection}/{photo}")
def _(ctx: Ctx) -> Req:
    # The link is the permission (signed as notify signs it, under the world's shared secret): no key needed.
    path = disinfection_photo_path("c1", ctx.seeded.disinfection, ctx.seeded.photo)
    return Req(f"{path}?{signed_query(ctx.world.settings.shared_key(LINK_SECRET), path, time.time(), 3600)}")


@case("testing", "GET", P + "/disinfections/{disinfection}/photos/{photo}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/disinfections/{ctx.seeded.disinfection}/photos/{ctx.seeded.photo}")


# --- notify


for _path in ("/groups", "/quiet-hours", "/messages", "/deliveries", "/question-groups", "/faq"):
    case("notify", "GET", P + _path)(lambda ctx, path=_path: Req(C + path))


@case("notify", "GET", P + "/groups/{building}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/groups/b1", building="b1")


@case("notify", "POST", P + "/groups/{building}/channels")
def _(ctx: Ctx) -> Req:
    body = {"kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook", "secret": "t" * 32}, "label": "x"}
    return Req(f"{C}/groups/b1/channels", {"json": body}, building="b1")


@case("notify", "GET", P + "/groups/{building}/channels")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/groups/b1/channels", building="b1")


def _channel(ctx: Ctx) -> str:
    return attach_channel(ctx.world, "b1") if ctx.fresh else ctx.seeded.channel


@case("notify", "PUT", P + "/groups/{building}/channels/{channel}")
def _(ctx: Ctx) -> Req:
    body = {"config": {"url": "http://127.0.0.1:9/other", "secret": "u" * 32}, "language": "en"}
    return Req(f"{C}/groups/b1/channels/{_channel(ctx)}", {"json": body}, building="b1")


@case("notify", "DELETE", P + "/groups/{building}/channels/{channel}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/groups/b1/channels/{_channel(ctx)}", building="b1")


@case("notify", "PUT", P + "/quiet-hours")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/quiet-hours", {"json": {"start": "22:00", "end": "07:00"}})


@case("notify", "POST", P + "/announcements")
def _(ctx: Ctx) -> Req:
    body = {"title": "明日全员核酸", "body": "按楼层分批下楼", "buildings": ["b1"]}
    return Req(f"{C}/announcements", {"json": body}, building="b1")


@case("notify", "POST", P + "/daily-account")
def _(ctx: Ctx) -> Req:
    # Every group hears the account: a key limited to some buildings may not send it (b1 stands for them all).
    return Req(f"{C}/daily-account", {"json": {}}, building="b1")


@case("notify", "GET", P + "/messages/{message}")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/messages/{ctx.seeded.message}")


@case("notify", "POST", P + "/deliveries/{delivery}/requeue")
def _(ctx: Ctx) -> Req:
    # Nothing is dead in this world: an admitted caller reaches the lookup and hears 404.
    return Req(f"{C}/deliveries/00000000-0000-0000-0000-000000000000/requeue", ok=frozenset({404}))


@case("notify", "POST", P + "/buildings/{building}/questions")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/questions", {"json": {"text": "快递什么时候能进小区？"}}, building="b1")


@case("notify", "POST", P + "/question-groups/{group}/answer")
def _(ctx: Ctx) -> Req:
    group = ctx.seeded.question_group
    if ctx.fresh:
        asked = ctx.ok("notify", "POST", f"{C}/buildings/b1/questions", json={"text": ctx.pool.fresh("问题")})
        group = asked["question_group"]
    body = {"answer": "由区里统一安排。", "question": "什么时候？"}
    return Req(f"{C}/question-groups/{group}/answer", {"json": body})


_CALLS: dict[int, str] = {}  # per seeded world: the call the refused requests name


def _call(ctx: Ctx) -> str:
    """A call of b1: a new household marked as in no group, then a round (urgent) for the whole compound."""
    if not ctx.fresh and id(ctx.seeded) in _CALLS:
        return _CALLS[id(ctx.seeded)]
    home = ctx.household(0)[0]
    ctx.ok("residents", "PUT", f"{C}/households/{home}/unreachable", json={})
    ctx.world.pump()
    ctx.ok("testing", "POST", f"{C}/rounds", json={"round": ctx.pool.fresh("rd"), "starts_at": "2022-04-12T07:00",
                                                   "points": ["p1"]})  # fmt: skip
    ctx.world.pump()
    listed = ctx.ok("notify", "GET", f"{C}/buildings/b1/calls", params={"status": "all"})["calls"]
    _CALLS[id(ctx.seeded)] = call = next(c["call"] for c in listed if c["household"] == home)
    return call


@case("notify", "GET", P + "/buildings/{building}/calls")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/calls", building="b1")


@case("notify", "GET", P + "/calls/overdue")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/calls/overdue")


@case("notify", "POST", P + "/calls/{call}/done")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/calls/{_call(ctx)}/done", building="b1")


@case("notify", "GET", "/boards/{token}")
def _(ctx: Ctx) -> Req:
    return Req(f"/boards/{ctx.seeded.board_token}")


@case("notify", "GET", "/boards/{token}/stream")
def _(ctx: Ctx) -> Req:
    return Req(f"/boards/{ctx.seeded.board_token}/stream", stream=True)


@case("notify", "GET", P + "/buildings/{building}/board")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/board", building="b1")


@case("notify", "POST", P + "/buildings/{building}/board/rotate")
def _(ctx: Ctx) -> Req:
    return Req(f"{C}/buildings/b1/board/rotate", building="b1")


# Webhook subscriptions: the operator and outside systems. The matrix's external-consumer keys carry no grant,
# so they may register nothing (403 type-not-granted) and find no one else's subscription (404).
SUBSCRIBE = {"url": "http://127.0.0.1:9/hook", "types": ["juwei.testing.CaseConfirmed"], "compounds": ["c1"]}
NOBODYS = "0" * 32


def _subscription(ctx: Ctx) -> tuple[str, frozenset[int] | None]:
    """A subscription the caller may act on (made by the operator), or, for an outside system, what it gets."""
    if ctx.spec.role == r.EXTERNAL_CONSUMER:
        return NOBODYS, frozenset({404})
    if not ctx.fresh:
        return NOBODYS, None
    return ctx.ok("notify", "POST", "/subscriptions", json=SUBSCRIBE)["subscription"], None


@case("notify", "POST", "/subscriptions")
def _(ctx: Ctx) -> Req:
    if ctx.spec.role == r.EXTERNAL_CONSUMER:
        return Req("/subscriptions", {"json": SUBSCRIBE}, ok=frozenset({403}))
    return Req("/subscriptions", {"json": SUBSCRIBE})


case("notify", "GET", "/subscriptions")(lambda ctx: Req("/subscriptions"))

for _method, _tail, _body in (
    ("GET", "", None),
    ("POST", "/pause", None),
    ("POST", "/resume", None),
    ("POST", "/replay", {"service": "testing", "from_position": 0}),
    ("GET", "/deliveries", None),
):

    def _make(ctx: Ctx, tail: str = _tail, body: dict[str, Any] | None = _body) -> Req:
        made, refused = _subscription(ctx)
        req = Req(f"/subscriptions/{made}{tail}", {"json": body} if body else {})
        if refused is not None:
            req.ok = refused
        return req

    case("notify", _method, "/subscriptions/{subscription}" + _tail)(_make)


# ---------------------------------------------------------------------- the design, and calling it


def expected(roles: frozenset[str] | None, spec: KeySpec, req: Req) -> int | None:
    """403 where the design refuses the call, None where it must pass."""
    if roles is PUBLIC:
        return None
    if roles and spec.role not in roles:
        return 403
    if req.feed is not None and spec.role not in FEED_READERS[req.feed]:
        return 403
    if req.health and spec.role == r.EXTERNAL_CONSUMER:
        return 403
    if req.path.startswith("/compounds/") and spec.compound not in (None, "c1"):
        return 403
    # A subdistrict's list: the district's key, or that subdistrict's own (these keys are all a compound's).
    if req.path.startswith("/subdistricts/") and spec.compound is not None:
        return 403
    if req.building and spec.buildings is not None and req.building not in spec.buildings:
        return 403
    if req.point and spec.point is not None and req.point != spec.point:
        return 403
    if req.household and spec.household is not None and req.household != spec.household:
        return 403
    return None


def stream_status(world: World, service: str, path: str, key: str | None) -> int:
    """The status a streaming route answers with; the stream is closed right after it starts."""
    app = world.clients[service].app
    raw_path, _, query = path.partition("?")
    headers = [(b"x-api-key", key.encode())] if key else []
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": raw_path, "raw_path": raw_path.encode(),
             "query_string": query.encode(), "headers": headers, "scheme": "http", "server": ("testserver", 80),
             "client": ("127.0.0.1", 1), "root_path": "", "app": app}  # fmt: skip

    async def run() -> int:
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        disconnect = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not getattr(receive, "sent", False):
                receive.sent = True  # type: ignore[attr-defined]
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not started.done():
                started.set_result(message["status"])

        task = asyncio.create_task(app(scope, receive, send))
        try:
            return await asyncio.wait_for(started, timeout=10)
        finally:
            disconnect.set()
            task.cancel()
            with contextlib.suppress(BaseException):  # the cancelled stream: its status is all we wanted
                await task

    return asyncio.run(run())


def call(world: World, service: str, method: str, req: Req, key: str | None) -> tuple[int, str, str]:
    if req.stream:
        return stream_status(world, service, req.path, key), "", ""
    answer = world.request(service, method, req.path, key, **req.kwargs)
    return answer.status_code, answer.headers.get("content-type", ""), answer.text[:300]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Seeded]]:
    tmp = tmp_path_factory.mktemp("access")
    made = World(tmp / "data", {s: f"sqlite:///{tmp / s}.db" for s in SERVICES}, rate_limit_per_second=0)
    seeded = seed(made)
    yield made, seeded
    made.close()


def _head(world: World, service: str) -> int:
    runtime = world.runtimes[service]
    with runtime.database.reading() as session:
        return runtime.store.head(session)


def _actors_after(world: World, service: str, position: int) -> list[str | None]:
    runtime = world.runtimes[service]
    with runtime.database.reading() as session:
        rows = session.execute(select(events_table.c.actor).where(events_table.c.position > position)).scalars()
        return list(rows)


def test_every_role_on_every_endpoint_in_and_out_of_its_scope(world: tuple[World, Seeded]) -> None:
    made, seeded = world
    table = routes(made)
    missing = sorted(set(table) - set(CASES))
    assert not missing, f"routes without a request in the access matrix: {missing}"
    assert not set(CASES) - set(table), f"requests for routes that no longer exist: {set(CASES) - set(table)}"
    keys = {spec: made.key(spec.role, spec.compound, list(spec.buildings) if spec.buildings else None,
                           point=spec.point, household=spec.household) for spec in key_specs()}  # fmt: skip
    started = time.perf_counter()
    failures: list[str] = []
    tally: Counter[str] = Counter()
    writes = 0
    for (service, method, path), roles in sorted(table.items()):
        # A public route answers the same whoever asks: once, without a key.
        callers = {KeySpec("anyone", OWN, None, None): None} if roles is PUBLIC else keys
        for spec, key in callers.items():
            probe = CASES[(service, method, path)](Ctx(made, seeded, spec, fresh=False))
            want = expected(roles, spec, probe)
            req = CASES[(service, method, path)](Ctx(made, seeded, spec, fresh=True)) if want is None else probe
            before = _head(made, service)
            status, media, text = call(made, service, method, req, key)
            actors = _actors_after(made, service, before)
            if req.after is not None:
                req.after()
            where = f"{spec.role:20} {spec.variant:14} {method:6} {service}{path}: got {status}"
            if want is not None:
                tally[f"refused {want}"] += 1
                if status != want or (media != PROBLEM and not req.stream):
                    failures.append(f"{where}, designed {want} problem+json — {text}")
                if actors:  # a refused call writes nothing, not even half
                    failures.append(f"{where}: refused, yet appended events {actors}")
            else:
                tally["admitted"] += 1
                if status not in req.ok:
                    failures.append(f"{where}, designed {sorted(req.ok)} — {text}")
                elif method != "GET":
                    writes += bool(actors)
                    if any(key is None or actor != key.split("_")[1] for actor in actors):
                        failures.append(f"{where}: events without the caller as actor: {actors}")
    took = time.perf_counter() - started
    print(f"\naccess matrix: {len(table)} routes × {len(keys)} keys = {sum(tally.values())} calls "
          f"({dict(tally)}), {writes} writes checked for their actor, in {took:.1f}s")  # fmt: skip
    assert not failures, f"{len(failures)} calls broke the design:\n" + "\n".join(failures)


def test_no_key_an_unknown_key_and_a_revoked_or_expired_key_get_401_everywhere(world: tuple[World, Seeded]) -> None:
    made, seeded = world
    table = routes(made)
    revoked = made.key(r.COMMITTEE_STAFF, "c1", label="revoked")
    rotated = made.key(r.COMMITTEE_STAFF, "c1", label="rotated")
    successor = None
    for runtime in made.runtimes.values():
        with runtime.database.unit_of_work() as session:
            assert revoke_key(session, revoked.split("_")[1])
            successor = rotate_key(session, rotated.split("_")[1], timedelta(0), successor).key
    assert successor is not None
    secret = revoked.rsplit("_", 1)[1]
    bad = {
        "no key": None,
        "unknown": "jw_0123456789abcdef_" + secret,
        "malformed": "not-a-key",
        "wrong secret": revoked.rsplit("_", 1)[0] + "_x" + secret,
        "revoked": revoked,
        "expired by rotation": rotated,
    }
    failures = []
    calls = 0
    for (service, method, path), roles in sorted(table.items()):
        if roles is PUBLIC:
            continue
        req = CASES[(service, method, path)](Ctx(made, seeded, key_specs()[0], fresh=False))
        for label, key in bad.items():
            calls += 1
            status, media, text = call(made, service, method, req, key)
            if status != 401 or (not req.stream and media != PROBLEM):
                failures.append(f"{label:20} {method} {service}{path}: {status} {text}")
    # The successor of the rotated key works in its place.
    assert made.request("residents", "GET", f"{C}/buildings", successor).status_code == 200
    print(f"\n401 checks: {calls} calls with {len(bad)} kinds of bad key")
    assert not failures, "\n".join(failures)


def test_a_rotated_key_keeps_working_through_its_grace_period_only(tmp_path: Path) -> None:
    from juwei.auth import authenticate, issue_key
    from juwei.callers import Holder

    made = World(tmp_path / "data", {s: f"sqlite:///{tmp_path / s}.db" for s in ("residents", *SERVICES[1:])})
    try:
        runtime = made.runtimes["residents"]
        with runtime.database.unit_of_work() as session:
            old = issue_key(
                session, r.INFORMATION_OFFICER, "c1", ["b1"], "officer of b1", holder=Holder("volunteer", "c1:ob1")
            ).key
            new = rotate_key(session, old.split("_")[1], timedelta(hours=24)).key
        with runtime.database.reading() as session:
            old_caller, new_caller = authenticate(session, old), authenticate(session, new)
        assert old_caller is not None and new_caller is not None
        assert (new_caller.role, new_caller.compound, new_caller.buildings) == (r.INFORMATION_OFFICER, "c1",
                                                                               frozenset({"b1"}))  # fmt: skip
        assert made.request("residents", "GET", f"{C}/buildings", old).status_code == 200  # within the grace
        later = made.runtimes["residents"]
        with later.database.unit_of_work() as session:
            # A second rotation with no grace ends the old key's life at once, never extends it.
            from juwei.auth import api_keys_table

            session.execute(
                api_keys_table.update()
                .where(api_keys_table.c.id == old.split("_")[1])
                .values(expires_at=api_keys_table.c.created_at)
            )
        assert made.request("residents", "GET", f"{C}/buildings", old).status_code == 401
        assert made.request("residents", "GET", f"{C}/buildings", new).status_code == 200
    finally:
        made.close()
