"""The households an information officer has still to reach in the current round: none of their members
sampled yet, in the officer's building only."""

from __future__ import annotations

from contracts import roles as r
from tests.conftest import both_databases
from tests.testing.conftest import Testing, open_points, receive, small_compound


@both_databases
def test_unreached_households_of_the_current_round(testing: Testing) -> None:
    compound = small_compound(buildings=3, residents=90)
    receive(testing.runtime, compound.envelopes)
    assert testing.problem("GET", "/unreached-households") == (404, "round-none")
    open_points(testing, 2)
    testing.ok("POST", "/assignment/proposal")
    testing.ok("POST", "/rounds", json={"round": "r0", "starts_at": "2022-04-10T07:00", "points": ["p1", "p2"]})
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"]})
    testing.ok("POST", "/rounds", json={"round": "r2", "starts_at": "2022-04-14T07:00", "points": ["p1", "p2"]})
    homes = compound.households_of("2")
    reached = sorted(homes)[:3]  # one member of each of three households, all members of none other
    partly = [homes[h][0] for h in reached]
    testing.ok("POST", "/rounds/r1/samples", json={"tube": "U1", "residents": partly, "point": "p1"})
    officer = testing.key(r.INFORMATION_OFFICER, buildings=["2"])
    answer = testing.ok("GET", "/unreached-households", headers=officer)
    assert (answer["round"], answer["on"]) == ("r1", "2022-04-12")  # r2 has not begun; r0 is over
    assert [b["building"] for b in answer["buildings"]] == ["2"]
    listed = answer["buildings"][0]["households"]
    assert {h["household"] for h in listed} == set(homes) - set(reached)
    assert all(h["residents"] == len(homes[h["household"]]) for h in listed)
    assert [(h["floor"], h["room"]) for h in listed] == sorted((h["floor"], h["room"]) for h in listed)
    everyone = testing.ok("GET", "/unreached-households")["buildings"]
    assert [b["building"] for b in everyone] == ["1", "2", "3"]
    assert testing.status("GET", "/unreached-households?building=1", officer) == 403
    assert testing.status("GET", "/unreached-households", testing.key(r.LOGISTICS_VOLUNTEER, buildings=["2"])) == 403
    assert testing.status("GET", "/unreached-households", testing.key(r.COMMITTEE_STAFF, compound="c2")) == 403
