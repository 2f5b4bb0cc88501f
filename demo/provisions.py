"""Donations under the no-gifts rule, a government batch delivered floor by floor by both logistics shifts,
and the elderly residents' medicine bought with their medical-insurance cards."""

from __future__ import annotations

import random
from typing import Any

from demo.api import DemoError, in_parallel
from demo.compound import Person, Size
from demo.day import Day

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


class Provisions(Day):
    """Donations, supplies and medicine."""

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
