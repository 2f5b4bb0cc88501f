"""The overview's figures per building, gathered from the four services at once (two rounds of concurrent calls).

First round: zones, rounds, batches, medicine outstanding, follow-ups, open question groups. Second round, what
depends on the first: today's round's counts and plan, and the progress of the newest dispatched batches.
One service down leaves its columns empty (``missing``), not the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from console.services_client import ServiceClient, ServiceProblem, gather_settled

# Pending deliveries count over the newest dispatched batches only: older ones are done or followed up.
RECENT_BATCHES = 5


@dataclass
class BuildingFigures:
    building: str
    zone: str | None = None
    days_left: int | None = None
    next_zone: str | None = None
    residents: int | None = None
    called: int | None = None
    sampled: int | None = None
    missing: int | None = None
    pending_deliveries: int | None = None
    follow_ups: int | None = None
    cards_out: int | None = None
    cards_overdue: int | None = None
    open_questions: int | None = None


@dataclass
class Overview:
    today: str | None
    round: dict[str, Any] | None
    buildings: list[BuildingFigures] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # the services (or lists) that did not answer

    def total(self, name: str) -> int | None:
        values = [getattr(b, name) for b in self.buildings if getattr(b, name) is not None]
        return sum(values) if values else None


def todays_round(rounds: list[dict[str, Any]], today: str | None) -> dict[str, Any] | None:
    """Today's round (the latest starting today), else None."""
    return next((r for r in rounds if r.get("on") == today), None)


def days_until(today: str | None, then: str | None) -> int | None:
    if not today or not then:
        return None
    return max(0, (date.fromisoformat(then) - date.fromisoformat(today)).days)


async def gather_overview(client: ServiceClient, compound: str, visible: tuple[str, ...] | None) -> Overview:
    base = f"/compounds/{compound}"
    first = await gather_settled(
        {
            "zones": client.get("residents", f"{base}/zones"),
            "rounds": client.get("testing", f"{base}/rounds"),
            "batches": client.get("supplies", f"{base}/batches"),
            "medicine": client.get("supplies", f"{base}/medicine/outstanding"),
            "follow_ups": client.get("supplies", f"{base}/follow-ups"),
            "questions": client.get("notify", f"{base}/question-groups", status="open", limit=500),
        }
    )
    missing = [name for name, answer in first.items() if isinstance(answer, ServiceProblem)]
    zones = first["zones"] if "zones" not in missing else {"today": None, "buildings": []}
    today = zones.get("today")
    chosen = todays_round(first["rounds"]["rounds"], today) if "rounds" not in missing else None
    dispatched = (
        [b["batch"] for b in first["batches"]["batches"] if b.get("dispatched_on")][:RECENT_BATCHES]
        if "batches" not in missing
        else []
    )
    second_calls: dict[str, Any] = {}
    if chosen is not None:
        second_calls["counts"] = client.get("testing", f"{base}/rounds/{chosen['round']}/counts")
        if chosen.get("kind") == "pcr":
            second_calls["plan"] = client.get("testing", f"{base}/rounds/{chosen['round']}/plan")
    for batch in dispatched:
        second_calls[f"batch:{batch}"] = client.get("supplies", f"{base}/batches/{batch}/progress")
    second = await gather_settled(second_calls)
    missing += [name for name, answer in second.items() if isinstance(answer, ServiceProblem)]

    rows: dict[str, BuildingFigures] = {}
    for entry in zones["buildings"]:
        if visible is None or entry["building"] in visible:
            rows[entry["building"]] = BuildingFigures(
                entry["building"],
                zone=entry["zone"],
                next_zone=entry.get("next_zone"),
                days_left=days_until(today, entry.get("next_change_on")),
            )

    def row(building: str) -> BuildingFigures | None:
        return rows.get(building)

    counts = second.get("counts")
    if counts is not None and not isinstance(counts, ServiceProblem):
        for entry in counts["buildings"]:
            if (found := row(entry["building"])) is not None:
                found.residents = entry["residents"]
                found.sampled = entry["tested"]
                found.missing = entry["residents"] - entry["tested"]
                found.called = 0 if chosen and chosen.get("kind") == "pcr" else None
    plan = second.get("plan")
    if plan is not None and not isinstance(plan, ServiceProblem):
        for point in plan["points"]:
            for call in point["calls"]:
                if call.get("called_at") and (found := row(call["building"])) is not None:
                    found.called = (found.called or 0) + call["people"]
    for name, answer in second.items():
        if name.startswith("batch:") and not isinstance(answer, ServiceProblem):
            for entry in answer["buildings"]:
                if (found := row(entry["building"])) is not None:
                    pending = max(0, entry["households"] - entry["delivered"])
                    found.pending_deliveries = (found.pending_deliveries or 0) + pending
    if "follow_ups" not in missing:
        for entry in first["follow_ups"]["follow_ups"]:
            if (found := row(entry["building"])) is not None:
                found.follow_ups = (found.follow_ups or 0) + 1
    if "medicine" not in missing:
        for entry in first["medicine"]["buildings"]:
            if (found := row(entry["building"])) is not None:
                found.cards_out, found.cards_overdue = entry["cards_out"], entry["cards_overdue"]
    if "questions" not in missing:
        for group in first["questions"]["groups"]:
            for building in group["buildings"]:
                if (found := row(building)) is not None:
                    found.open_questions = (found.open_questions or 0) + 1
    # Where a service answered, a building it says nothing of has none of that (0, not "unknown").
    for found in rows.values():
        if dispatched and found.pending_deliveries is None:
            found.pending_deliveries = 0
        for name, service_list in (
            ("follow_ups", "follow_ups"),
            ("cards_out", "medicine"),
            ("cards_overdue", "medicine"),
            ("open_questions", "questions"),
        ):
            if service_list not in missing and getattr(found, name) is None:
                setattr(found, name, 0)
    return Overview(today=today, round=chosen, buildings=list(rows.values()), missing=missing)
