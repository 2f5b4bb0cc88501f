"""Testing's register of who lives where follows the residents service's events: moves, needs, erasure."""

from __future__ import annotations

import pytest

from contracts.residents import ResidentArrived, ResidentErased, ResidentMoved, ResidentNeedsChanged
from juwei.consumer import Delivery
from juwei.events import MalformedEvent, UnknownEventType
from tests.conftest import both_databases
from tests.testing.conftest import Testing, open_points, receive, small_compound


@both_databases
def test_moves_needs_and_erasure_reach_the_plan_and_the_coverage(testing: Testing) -> None:
    compound = small_compound(buildings=2, residents=40, bedridden_share=0)
    homes = compound.households_of("1")
    (mover_home, movers), (target, _) = list(homes.items())[:2]
    mover, leaver = movers[0], next(r for h, people in homes.items() if h != mover_home for r in people)
    target_floor = int(target.split("-")[1][:2])
    target_room = int(target[-2:])
    gid = "c1:{}".format
    compound.publish(
        f"household-{gid(mover_home)}",
        ResidentMoved(
            resident=gid(mover),
            from_household=gid(mover_home),
            from_building="c1:1",
            to_household=gid(target),
            building="c1:1",
            floor=target_floor,
            room=target_room,
        ),
    )
    compound.publish(
        f"household-{gid(target)}",
        ResidentArrived(
            resident=gid(mover),
            household=gid(target),
            building="c1:1",
            from_household=gid(mover_home),
            birth_year=1950,
            bedridden=True,
        ),
    )
    bedridden = next(r for r in compound.households_of("2").values())[0]
    home_of = compound.residents[bedridden][1]
    compound.publish(
        f"household-{gid(home_of)}",
        ResidentNeedsChanged(resident=gid(bedridden), household=gid(home_of), building="c1:2", bedridden=True),
    )
    compound.publish(
        f"household-{gid(compound.residents[leaver][1])}",
        ResidentErased(resident=gid(leaver), household=gid(compound.residents[leaver][1]), building="c1:1"),
    )
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 1)
    testing.ok("POST", "/assignment/proposal")
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1"]})
    plan = testing.ok("POST", "/rounds/r1/plan")
    assert plan["called"] + plan["door_to_door"] == 39  # the erased resident is no longer planned for
    visits = {v["resident"]: v for v in testing.ok("GET", "/rounds/r1/door-to-door")["visits"]}
    assert set(visits) == {mover, bedridden}
    assert (visits[mover]["household"], visits[mover]["floor"]) == (target, target_floor)
    counts = testing.ok("GET", "/rounds/r1/counts")
    assert counts["residents"] == 39
    coverage = testing.ok("GET", "/rounds/r1/coverage?building=1")["buildings"][0]
    listed = {r for f in coverage["floors"] for h in f["households"] for r in h["not_tested"]}
    assert leaver not in listed and mover in listed


def test_a_residents_event_that_breaks_the_catalogue_is_poison(testing: Testing) -> None:
    good = small_compound(buildings=1, residents=2).envelopes
    broken = good[1].__class__(**{**good[1].__dict__, "id": "broken-1", "data": {"household": "c1:h"}})
    with testing.runtime.database.unit_of_work() as session, pytest.raises(MalformedEvent):
        testing.runtime.handle_received(session, Delivery(broken, 1, "juwei.residents"))
    stranger = good[1].__class__(**{**good[1].__dict__, "id": "odd-1", "type": "juwei.residents.Unheard.v1"})
    with testing.runtime.database.unit_of_work() as session, pytest.raises(UnknownEventType):
        testing.runtime.handle_received(session, Delivery(stranger, 1, "juwei.residents"))
