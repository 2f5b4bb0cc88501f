"""The supplies domain as plain Python: allocation, rota, both-shifts rule, deliveries, custody, donations."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from contracts import supplies as ev
from contracts.supplies import CardHolder, DonationItem, GroupOrder, SupplyItem
from juwei.aggregate import DomainRuleViolation
from juwei.events import payload
from juwei.problems import status_of
from services.supplies.domain import (
    Batch,
    BuildingDelivery,
    CompoundPolicy,
    Donation,
    HouseholdFacts,
    MedicineCard,
    SupplyPolicy,
    allocate,
    apportion,
    call_shifts,
    holder,
    judge,
    rota,
    shift_on_duty,
)

TODAY = date(2022, 4, 12)
NOW = datetime(2022, 4, 12, 9, 0, tzinfo=UTC)
POLICY = SupplyPolicy(rota_starts_on=date(2022, 4, 1), both_shifts_households=60, both_shifts_items=300)


def raises_rule(code: str, fn, *args, **kwargs) -> DomainRuleViolation:
    with pytest.raises(DomainRuleViolation) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, f"{info.value.code}: {info.value}"
    assert str(info.value)
    return info.value


def facts(count: int, building: str = "c1:1", sizes: list[int] | None = None) -> list[HouseholdFacts]:
    sizes = sizes or [1 + n % 4 for n in range(count)]
    return [
        HouseholdFacts(
            f"c1:h{n}",
            building,
            1 + n // 4,
            1 + n % 4,
            tuple(frozenset({"elderly"} if m == 0 and n % 3 == 0 else ()) for m in range(sizes[n])),
        )
        for n in range(count)
    ]


# --- the catalogue ----------------------------------------------------------------------------------------


def test_catalogue_is_registered_versioned_and_carries_no_identity() -> None:
    assert len(ev.registry.classes) == len(ev.CATALOGUE)
    forbidden = {"name", "phone", "id_number", "medicine", "hospital", "full_name"}
    for cls in ev.CATALOGUE:
        assert cls.event_type == f"juwei.supplies.{cls.__name__}"
        assert ev.registry.classes[cls.type_name()] is cls
        assert not forbidden & set(cls.model_fields), cls
    assert ev.MedicineRequested.private_fields == {"prescription"}
    assert ev.DonationAccepted.private_fields == ev.DonationRefused.private_fields == {"donor_name"}
    requested = ev.MedicineRequested(
        request="c1:m1", card="c1:r1", resident="c1:r1", household="c1:h1", building="c1:1",
        requested_on=TODAY, prescription="sealed:v1:abc",
    )  # fmt: skip
    assert "prescription" not in payload(requested)


# --- allocation -------------------------------------------------------------------------------------------


def test_equal_allocation_conserves_totals_and_hands_out_remainders_deterministically() -> None:
    homes = facts(150)
    plan = allocate("c1:b1", {"rice": 100, "vegetables": 450}, homes, "equal")
    assert sum(share.get("rice", 0) for share in plan.values()) == 100
    assert sum(share["vegetables"] for share in plan.values()) == 450
    assert {share["vegetables"] for share in plan.values()} == {3}
    assert sorted({share.get("rice", 0) for share in plan.values()}) == [0, 1] or len(plan) == 150
    assert plan == allocate("c1:b1", {"rice": 100, "vegetables": 450}, list(reversed(homes)), "equal")
    # Another batch's leftovers go to other households: nobody is always last.
    other = allocate("c1:b2", {"rice": 100}, homes, "equal")
    lucky_first = {h for h, s in plan.items() if s.get("rice")}
    lucky_second = set(other)
    assert lucky_first != lucky_second


def test_allocation_by_household_size_and_by_needs() -> None:
    homes = facts(4, sizes=[1, 2, 3, 4])
    by_size = allocate("c1:b1", {"eggs": 100}, homes, "household_size")
    assert [by_size[f"c1:h{n}"]["eggs"] for n in range(4)] == [10, 20, 30, 40]
    elderly_homes = [h.household for h in homes if any("elderly" in m for m in h.members)]
    by_needs = allocate("c1:b1", {"milk_powder": 9}, homes, "needs", ["elderly"])
    assert set(by_needs) == set(elderly_homes)
    assert sum(s["milk_powder"] for s in by_needs.values()) == 9
    empty = HouseholdFacts("c1:empty", "c1:1", 9, 1, ())  # everyone moved out or was erased
    assert "c1:empty" not in allocate("c1:b1", {"rice": 7}, [*homes, empty], "equal")
    raises_rule("nobody-to-allocate", allocate, "c1:b1", {"milk": 5}, homes, "needs", ["pregnant"])
    raises_rule("invalid-needs", allocate, "c1:b1", {"milk": 5}, homes, "needs", ["vip"])
    raises_rule("invalid-method", allocate, "c1:b1", {"milk": 5}, homes, "by_rank")


def test_no_household_twice() -> None:
    homes = facts(3)
    raises_rule("household-twice", allocate, "c1:b1", {"rice": 10}, [*homes, homes[0]], "equal")


@pytest.mark.parametrize("seed", range(40))
def test_allocation_properties_hold_for_any_batch(seed: int) -> None:
    rng = random.Random(seed)
    homes = facts(rng.randint(1, 300), sizes=None)
    items = {f"item{n}": rng.randint(1, 5000) for n in range(rng.randint(1, 5))}
    method = rng.choice(["equal", "household_size"])
    plan = allocate(f"c1:b{seed}", items, homes, method)
    assert set(plan) <= {h.household for h in homes}
    weights = {h.household: 1 if method == "equal" else len(h.members) for h in homes}
    total = sum(weights.values())
    for item, quantity in items.items():
        assert sum(share.get(item, 0) for share in plan.values()) == quantity
        for household, w in weights.items():
            quota = quantity * w / total
            assert abs(plan.get(household, {}).get(item, 0) - quota) < 1  # largest remainder: never a whole unit off


def test_apportion_is_exact_in_integers() -> None:
    assert apportion(10, {"a": 1, "b": 1, "c": 1}, {"a": "2", "b": "1", "c": "3"}) == {"a": 3, "b": 4, "c": 3}
    assert apportion(1, {"a": 0, "b": 5}, {"a": "0", "b": "1"}) == {"b": 1}


def test_group_purchase_orders_belong_to_the_household_they_are_for() -> None:
    batch = Batch("c1:gp1")
    orders = [
        GroupOrder(order="c1:o1", household="c1:h2", items={"milk": 2}, placed_from_outside=True),  # a child outside
        GroupOrder(order="c1:o2", household="c1:h1", items={"rice": 1}),
        GroupOrder(order="c1:o3", household="c1:h2", items={"rice": 1}),
    ]
    batch.arrive("group_purchase", [], arrived_on=TODAY, orders=orders)
    assert batch.items == {"milk": 2, "rice": 2}
    raises_rule("invalid-method", batch.plan, facts(3)[1:], "equal")
    raises_rule("not-a-target", batch.plan, facts(3))  # h0 ordered nothing
    batch.plan(facts(3)[1:])
    assert batch.shares["c1:h2"]["items"] == {"milk": 2, "rice": 1}
    assert batch.shares["c1:h1"]["items"] == {"rice": 1}
    assert "c1:h0" not in batch.shares
    missing = Batch("c1:gp2")
    missing.arrive(
        "group_purchase", [], arrived_on=TODAY, orders=[GroupOrder(order="c1:o9", household="c1:h99", items={"x": 1})]
    )
    raises_rule("household-unknown", missing.plan, [])
    bad = Batch("c1:gp3")
    raises_rule(
        "items-do-not-match-orders",
        bad.arrive,
        "group_purchase",
        [SupplyItem(item="milk", quantity=3)],
        arrived_on=TODAY,
        orders=orders[:1],
    )


def test_the_plan_is_recorded_per_building_before_anything_moves() -> None:
    batch = Batch("c1:b1")
    raises_rule(
        "targets-required", batch.arrive, "government", [SupplyItem(item="rice", quantity=10)], arrived_on=TODAY
    )
    batch.arrive("government", [SupplyItem(item="rice", quantity=10)], arrived_on=TODAY, buildings=["c1:1", "c1:2"])
    raises_rule("not-planned", batch.dispatch, TODAY)
    homes = facts(4, "c1:1") + [HouseholdFacts(f"c1:k{n}", "c1:2", 1, n + 1, (frozenset(),)) for n in range(3)]
    raises_rule("not-a-target", batch.plan, [*homes, HouseholdFacts("c1:z", "c1:3", 1, 1, (frozenset(),))])
    batch.plan(homes, "equal")
    planned = [e for e in batch.pending() if isinstance(e, ev.AllocationPlanned)]
    assert [(e.building, e.households, e.items) for e in planned] == [
        ("c1:1", 4, {"rice": 6}),
        ("c1:2", 3, {"rice": 4}),
    ]
    raises_rule("already-planned", batch.plan, homes)
    assert batch.dispatch(TODAY) == ["c1:1", "c1:2"]
    raises_rule("already-dispatched", batch.dispatch, TODAY)
    tasks, items = batch.load_of("c1:1")
    assert [t[0] for t in tasks] == ["c1:h0", "c1:h1", "c1:h2", "c1:h3"] and items == 6


# --- the A/B rota and the both-shifts rule ------------------------------------------------------------------


def test_rota_alternates_by_its_pattern() -> None:
    ab = SupplyPolicy(rota_pattern="AB", rota_starts_on=date(2022, 4, 1))
    assert [s for _, s in rota(date(2022, 4, 1), 4, ab)] == ["A", "B", "A", "B"]
    assert shift_on_duty(date(2022, 3, 31), ab) == "B"  # before the start the pattern runs backwards
    aabb = SupplyPolicy(rota_pattern="AABB", rota_starts_on=date(2022, 4, 1))
    assert "".join(s for _, s in rota(date(2022, 4, 1), 8, aabb)) == "AABBAABB"
    for pattern, code in (("AAA", "invalid-rota"), ("ABC", "invalid-rota"), ("", "invalid-rota")):
        raises_rule(code, SupplyPolicy(rota_pattern=pattern).checked)
    raises_rule("invalid-threshold", SupplyPolicy(both_shifts_households=0).checked)


def test_both_shifts_only_above_the_threshold() -> None:
    day = date(2022, 4, 2)  # a B day
    at = call_shifts(60, 300, day, POLICY)
    assert (at.shifts, at.both, at.shift_on_duty) == (("B",), False, "B")
    households = call_shifts(61, 10, day, POLICY)
    assert households.both and households.shifts == ("A", "B") and "61 households" in households.reason
    items = call_shifts(5, 301, day, POLICY)
    assert items.both and "301 items" in items.reason


# --- deliveries and follow-ups ------------------------------------------------------------------------------

GROUP = {"c1:v1": "A", "c1:v2": "A", "c1:v4": "B"}


def delivery(households: int = 3) -> BuildingDelivery:
    found = BuildingDelivery("c1:b1@c1:1")
    found.call(
        "c1:b1",
        "c1:1",
        TODAY,
        call_shifts(households, households, date(2022, 4, 1), POLICY),
        volunteers=["c1:v1", "c1:v2"],
        tasks=[(f"c1:h{n}", 1 + n // 2, 1 + n % 2) for n in range(households)],
        items=households,
    )
    return found


def test_deliveries_confirmations_failures_and_the_follow_up_list() -> None:
    found = delivery(3)
    tasks = next(e for e in found.pending() if isinstance(e, ev.DeliveryTasksIssued))
    assert [(t.floor, t.households) for t in tasks.floors] == [(1, ["c1:h0", "c1:h1"]), (2, ["c1:h2"])]
    found.confirm("c1:h0", "c1:v1", GROUP)
    found.fail("c1:h1", "no_one_home", "c1:v2", GROUP)
    found.fail("c1:h2", "wrong_items", None, GROUP)  # staff recording it for the volunteers
    assert found.follow_ups == ["c1:h1", "c1:h2"]
    failed = found.pending()[-1]
    assert isinstance(failed, ev.DeliveryFailed)
    assert (failed.delivered, failed.households, failed.follow_ups, failed.attempt) == (1, 3, 2, 1)
    found.fail("c1:h1", "no_one_home", "c1:v1", GROUP)
    assert found.pending()[-1].attempt == 2  # type: ignore[attr-defined]
    raises_rule("already-done", found.confirm, "c1:h0", "c1:v1", GROUP)
    raises_rule("not-in-task", found.confirm, "c1:h9", "c1:v1", GROUP)
    raises_rule("not-on-shift", found.confirm, "c1:h1", "c1:v4", GROUP)
    raises_rule("not-in-group", found.confirm, "c1:h1", "c1:v7", GROUP)
    raises_rule("no-follow-up", found.resolve, "c1:h0", "collected", None, GROUP)
    raises_rule("invalid-resolution", found.resolve, "c1:h1", "forgotten", None, GROUP)
    found.confirm("c1:h1", "c1:v1", GROUP)  # delivered on the second round: off the list
    assert isinstance(found.pending()[-1], ev.FollowUpResolved)
    assert found.pending()[-1].resolution == "redelivered"  # type: ignore[attr-defined]
    assert not found.complete
    found.resolve("c1:h2", "exchanged", "c1:v2", GROUP)
    done = found.pending()[-1]
    assert isinstance(done, ev.BuildingDelivered) and (done.delivered, done.households) == (3, 3)
    assert found.complete and found.follow_ups == []


def test_a_refused_share_goes_back_to_stock_and_the_building_completes() -> None:
    found = delivery(1)
    found.fail("c1:h0", "refused", "c1:v1", GROUP)
    found.resolve("c1:h0", "returned_to_stock", "c1:v1", GROUP)
    done = found.pending()[-1]
    assert isinstance(done, ev.BuildingDelivered) and (done.delivered, done.resolved_otherwise) == (0, 1)
    raises_rule(
        "already-called",
        found.call,
        "c1:b1",
        "c1:1",
        TODAY,
        call_shifts(1, 1, TODAY, POLICY),
        volunteers=[],
        tasks=[("c1:h0", 1, 1)],
        items=1,
    )


# --- the medicine card's custody chain ----------------------------------------------------------------------

LEADER = holder("volunteer", "c1:v1")
OTHER = holder("volunteer", "c1:v2")
SUBDISTRICT = holder("subdistrict", "sd-wang")


def card_with_request(resident: str = "c1:r1", requests: int = 1) -> MedicineCard:
    card = MedicineCard(resident)
    for n in range(requests):
        card.request_medicine(
            f"c1:m{resident[-1]}{n}",
            household="c1:h1",
            building="c1:1",
            requested_on=TODAY,
            by="c1:v0",
            prescription="sealed:v1:x",
        )
    return card


def custodians(card: MedicineCard) -> list[tuple[str, str]]:
    """The chain of holders from the events: every step's giver is the previous step's receiver."""
    chain = [("household", "c1:h1")]
    for event in card.pending():
        giver = getattr(event, "giver", None)
        receiver = getattr(event, "receiver", None)
        if receiver is not None:
            assert (giver.kind, giver.id) == chain[-1], "a card was handed over by someone who did not hold it"
            chain.append((receiver.kind, receiver.id))
    return chain


def test_the_custody_chain_has_exactly_one_custodian_at_every_step() -> None:
    card = card_with_request(requests=2)
    raises_rule("not-the-leader", card.collect, "c1:v2", building_leader="c1:v1", at=NOW)
    raises_rule("no-leader", card.collect, "c1:v1", building_leader=None, at=NOW)
    card.collect("c1:v1", building_leader="c1:v1", at=NOW)
    raises_rule("card-out", card.collect, "c1:v1", building_leader="c1:v1", at=NOW)
    card.hand_over(LEADER, SUBDISTRICT, handover="c1:ho1", cards_in_handover=12, logistics={"c1:v1", "c1:v2"}, at=NOW)
    raises_rule("card-not-with-buyer", card.purchase, "c1:m10", holder("subdistrict", "sd-li"), at=NOW)
    card.purchase("c1:m10", SUBDISTRICT, at=NOW)
    raises_rule("already-purchased", card.purchase, "c1:m10", SUBDISTRICT, at=NOW)
    card.hand_over(SUBDISTRICT, OTHER, handover="c1:ho2", cards_in_handover=12, logistics={"c1:v1", "c1:v2"}, at=NOW)
    card.return_home(OTHER, at=NOW)
    returned = card.pending()[-1]
    assert isinstance(returned, ev.MedicineAndCardReturned)
    assert returned.fulfilled == ["c1:m10"] and returned.still_open == ["c1:m11"]
    assert custodians(card) == [
        ("household", "c1:h1"),
        ("volunteer", "c1:v1"),
        ("subdistrict", "sd-wang"),
        ("volunteer", "c1:v2"),
        ("household", "c1:h1"),
    ]
    assert card.holder == {"kind": "household", "id": "c1:h1"} and card.at_home
    raises_rule("card-at-home", card.return_home, OTHER, at=NOW)


def test_a_handover_by_someone_who_does_not_hold_the_card_is_rejected_and_nothing_is_recorded() -> None:
    card = card_with_request()
    card.collect("c1:v1", building_leader="c1:v1", at=NOW)
    card.mark_saved()
    before = (card.version, dict(card.holder or {}))
    error = raises_rule(
        "not-the-custodian",
        card.hand_over,
        OTHER,
        SUBDISTRICT,
        handover="c1:ho1",
        cards_in_handover=1,
        logistics={"c1:v1", "c1:v2"},
        at=NOW,
    )
    assert str(error) == (
        "the card of resident c1:r1 is held by volunteer c1:v1, not by volunteer c1:v2:"
        " only the card's custodian can hand it over"
    )
    assert status_of(error) == 409
    assert card.pending() == [] and (card.version, card.holder) == before
    raises_rule("not-the-custodian", card.return_home, SUBDISTRICT, at=NOW)
    raises_rule(
        "collect-first",
        card.hand_over,
        holder("household", "c1:h1"),
        LEADER,
        handover="x",
        cards_in_handover=1,
        logistics=set(),
        at=NOW,
    )
    raises_rule(
        "use-return",
        card.hand_over,
        LEADER,
        holder("household", "c1:h1"),
        handover="x",
        cards_in_handover=1,
        logistics=set(),
        at=NOW,
    )
    raises_rule(
        "same-holder", card.hand_over, LEADER, LEADER, handover="x", cards_in_handover=1, logistics=set(), at=NOW
    )
    raises_rule(
        "not-in-group",
        card.hand_over,
        LEADER,
        holder("volunteer", "c1:v9"),
        handover="x",
        cards_in_handover=1,
        logistics={"c1:v1"},
        at=NOW,
    )
    assert card.pending() == []


def test_a_card_not_back_in_time_raises_one_overdue_alert_per_trip() -> None:
    card = card_with_request()
    raises_rule("card-unknown", MedicineCard("c1:r9").collect, "c1:v1", building_leader="c1:v1", at=NOW)
    assert not card.check_overdue(NOW + timedelta(days=9), 48)  # at home: nothing to alert
    card.collect("c1:v1", building_leader="c1:v1", at=NOW)
    assert not card.check_overdue(NOW + timedelta(hours=48), 48)
    assert card.check_overdue(NOW + timedelta(hours=49), 48)
    alert = card.pending()[-1]
    assert isinstance(alert, ev.CardOverdue) and alert.holder == CardHolder(kind="volunteer", id="c1:v1")
    assert (alert.hours_out, alert.limit_hours) == (49, 48)
    assert not card.check_overdue(NOW + timedelta(hours=72), 48)  # once per trip
    card.purchase("c1:m10", LEADER, at=NOW + timedelta(hours=72))
    card.return_home(LEADER, at=NOW + timedelta(hours=73))
    raises_rule("nothing-to-buy", card.collect, "c1:v1", building_leader="c1:v1", at=NOW + timedelta(hours=74))
    card.request_medicine("c1:m99", household="c1:h1", building="c1:1", requested_on=TODAY, by=None, prescription=None)
    card.collect("c1:v1", building_leader="c1:v1", at=NOW + timedelta(days=5))
    assert card.check_overdue(NOW + timedelta(days=8), 48)  # a new trip, a new alert


# --- donations: the no-gifts rule ---------------------------------------------------------------------------


def test_only_epidemic_prevention_supplies_are_accepted() -> None:
    items = [
        DonationItem(item="kn95", category="Masks", quantity=2000),
        DonationItem(item="kits", category="antigen kits", quantity=500),
        DonationItem(item="staff_lunch", category="meals", quantity=7, unit="box"),
    ]
    accepted, refused = judge(items, POLICY.donation_categories)
    assert [i.item for i in accepted] == ["kn95", "kits"] and [i.item for i in refused] == ["staff_lunch"]
    gift = Donation("c1:d1")
    gift.receive(
        "c1:donor-1", items, categories=POLICY.donation_categories, received_on=TODAY, donor_name="sealed:v1:n"
    )
    took, declined = gift.pending()
    assert isinstance(took, ev.DonationAccepted) and isinstance(declined, ev.DonationRefused)
    assert [i.category for i in took.items] == ["masks", "antigen_kits"]
    assert "meals" in declined.reason and "no gifts" in declined.reason
    raises_rule(
        "donation-exists", gift.receive, "c1:donor-1", items, categories=POLICY.donation_categories, received_on=TODAY
    )
    gift.allocate("c1:b1", {"kn95": 1500})
    raises_rule("donation-short", gift.allocate, "c1:b2", {"kn95": 501})
    raises_rule("not-accepted", gift.allocate, "c1:b2", {"staff_lunch": 1})
    assert gift.remaining("kn95") == 500


def test_meals_for_the_staff_are_refused_with_the_reason_and_the_staff_may_refuse_anything() -> None:
    meals = Donation("c1:d2")
    meals.receive(
        "c1:donor-2",
        [DonationItem(item="lunch", category="meals", quantity=7)],
        categories=POLICY.donation_categories,
        received_on=TODAY,
    )
    (refusal,) = meals.pending()
    assert isinstance(refusal, ev.DonationRefused) and refusal.reason.startswith(
        "not epidemic-prevention supplies (meals)"
    )
    expired = Donation("c1:d3")
    expired.receive(
        "c1:donor-3",
        [DonationItem(item="kits", category="antigen_kits", quantity=50)],
        categories=POLICY.donation_categories,
        received_on=TODAY,
        refuse_reason="expired in March",
    )
    assert [type(e).__name__ for e in expired.pending()] == ["DonationRefused"]
    assert expired.pending()[0].reason == "expired in March"  # type: ignore[attr-defined]
    wider = SupplyPolicy(donation_categories=("masks", "Rice")).checked()
    assert wider.donation_categories == ("masks", "rice")


def test_a_donation_batch_is_made_of_what_was_accepted() -> None:
    batch = Batch("c1:db1")
    use = ev.DonationUse(donation="c1:d1", item="kn95", quantity=1500)
    raises_rule(
        "invalid-batch",
        batch.arrive,
        "donation",
        [SupplyItem(item="kn95", quantity=1)],
        arrived_on=TODAY,
        buildings=["c1:1"],
        donations=[(use, "piece")],
    )
    batch.arrive("donation", [], arrived_on=TODAY, buildings=["c1:1"], donations=[(use, "piece")])
    assert batch.items == {"kn95": 1500}


def test_the_compound_policy_is_an_event_and_defaults_hold_until_set() -> None:
    policy = CompoundPolicy("c1")
    assert policy.current(POLICY) is POLICY
    policy.set(SupplyPolicy(rota_pattern="abba", both_shifts_households=40, donation_categories=("masks",)))
    (event,) = policy.pending()
    assert isinstance(event, ev.SupplyPolicySet) and event.rota_pattern == "ABBA"
    assert policy.current(POLICY).both_shifts_households == 40
    raises_rule("invalid-category", CompoundPolicy("c2").set, SupplyPolicy(donation_categories=("  ",)))
