"""A subdistrict's (街道) compounds side by side: zones, today's round, cases and medicine runs of each, gathered
from the services over HTTP as the subdistrict's own key. The compounds are those the residents' register
places in the subdistrict; every service checks the key's reach again itself.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from console.figures import todays_round
from console.services_client import ServiceClient, ServiceProblem, gather_settled

MEDICINE_FIGURES = ("open_requests", "bought_not_home", "cards_out", "cards_overdue")


def _zones(answer: Any) -> dict[str, Any] | None:
    if isinstance(answer, ServiceProblem):
        return None
    counts = Counter(entry["zone"] for entry in answer["buildings"])
    return {
        "compound": answer["compound"]["zone"],
        "days_since_last_case": answer["compound"]["days_since_last_case"],
        "next_change_on": answer["compound"]["next_change_on"],
        "buildings": {zone: counts.get(zone, 0) for zone in ("sealed", "controlled", "precaution")},
    }


def _medicine(answer: Any) -> dict[str, int] | None:
    if isinstance(answer, ServiceProblem):
        return None
    return {name: sum(entry[name] for entry in answer["buildings"]) for name in MEDICINE_FIGURES}


async def gather_subdistrict(client: ServiceClient, subdistrict: str) -> dict[str, Any]:
    """Every compound of the subdistrict, one row each; a service that did not answer leaves its part None and is
    named in the row's ``missing``. Raises the residents' problem when the register refuses the key."""
    register = await client.get("residents", f"/subdistricts/{subdistrict}/compounds")
    calls: dict[str, Any] = {}
    for entry in register["compounds"]:
        base = f"/compounds/{entry['compound']}"
        calls[f"{entry['compound']}|zones"] = client.get("residents", f"{base}/zones")
        calls[f"{entry['compound']}|rounds"] = client.get("testing", f"{base}/rounds")
        calls[f"{entry['compound']}|cases"] = client.get("testing", f"{base}/case-counts")
        calls[f"{entry['compound']}|medicine"] = client.get("supplies", f"{base}/medicine/outstanding")
    answers = await gather_settled(calls)
    rows = []
    for entry in register["compounds"]:
        mine = {part: answers[f"{entry['compound']}|{part}"] for part in ("zones", "rounds", "cases", "medicine")}
        zones = _zones(mine["zones"])
        rounds = mine["rounds"]
        today = mine["zones"].get("today") if zones is not None else None
        chosen = todays_round(rounds["rounds"], today) if not isinstance(rounds, ServiceProblem) else None
        latest = rounds["rounds"][0] if not isinstance(rounds, ServiceProblem) and rounds["rounds"] else None
        cases = mine["cases"]
        rows.append(
            {
                "compound": entry["compound"],
                "name": entry["name"],
                "zone_rules": entry["zone_rules"],
                "zones": zones,
                "round_today": _round(chosen),
                "latest_round": _round(latest),
                "cases": None if isinstance(cases, ServiceProblem) else cases["by_status"],
                "medicine": _medicine(mine["medicine"]),
                "missing": sorted(part for part, answer in mine.items() if isinstance(answer, ServiceProblem)),
            }
        )
    return {"subdistrict": subdistrict, "compounds": rows}


def _round(found: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if found is None else {"round": found["round"], "kind": found["kind"], "on": found["on"]}
