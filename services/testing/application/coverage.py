"""Who has not been tested, by building, floor and household (the list information officers chase), and the
counts each building's group is told."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from contracts.ids import global_id, local_id
from juwei.aggregate import NotFound
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.session import Session
from services.testing.application.keys import visible_buildings
from services.testing.domain import AWAITING_RESULT, TO_RESAMPLE, Round, natural_key, tested
from services.testing.views import households, residents, round_residents, rounds


def everyone(session: Session, compound: str, round_id: str, wanted: set[str] | None) -> list[Row[Any]]:
    query = (
        select(
            residents.c.resident,
            residents.c.household,
            residents.c.building,
            households.c.floor,
            round_residents.c.status,
        )
        .join(households, households.c.household == residents.c.household)
        .outerjoin(
            round_residents,
            (round_residents.c.resident == residents.c.resident) & (round_residents.c["round"] == round_id),
        )
        .where(residents.c.compound == compound, residents.c.present.is_(True))
    )
    if wanted is not None:
        query = query.where(residents.c.building.in_([global_id(compound, b) for b in wanted]))
    return list(session.execute(query).all())


def require_round(session: Session, round_id: str, round: str) -> None:
    if session.execute(select(rounds.c.kind).where(rounds.c["round"] == round_id)).scalar() is None:
        raise Round.unknown(round)


def coverage(runtime: Runtime, caller: Caller, compound: str, round: str, building: str | None) -> dict[str, Any]:
    """The list information officers chase: by building, floor and household, resident ids only."""
    wanted = visible_buildings(caller, compound, building)
    round_id = global_id(compound, round)
    with runtime.database.reading() as session:
        require_round(session, round_id, round)
        rows = everyone(session, compound, round_id, wanted)
    per_building: dict[str, dict[str, Any]] = {}
    for resident, household, building_id, floor, status in rows:
        entry = per_building.setdefault(building_id, {"residents": 0, "tested": 0, "floors": {}})
        entry["residents"] += 1
        if tested(status):
            entry["tested"] += 1
        if tested(status) and status not in TO_RESAMPLE:
            continue
        homes = entry["floors"].setdefault(floor, {})
        chase = homes.setdefault(household, {"not_tested": [], "to_resample": []})
        if status is None:
            chase["not_tested"].append(local_id(resident))
        else:
            chase["to_resample"].append({"resident": local_id(resident), "status": status})
    return {
        "round": round,
        "buildings": [
            {
                "building": local_id(b),
                "residents": entry["residents"],
                "tested": entry["tested"],
                "not_tested": entry["residents"] - entry["tested"],
                "floors": [
                    {
                        "floor": floor,
                        "households": [
                            {"household": local_id(h), **lists} for h, lists in sorted(entry["floors"][floor].items())
                        ],
                    }
                    for floor in sorted(entry["floors"])
                ],
            }
            for b, entry in sorted(per_building.items(), key=lambda item: natural_key(item[0]))
        ],
    }


def current_round(session: Session, compound: str, today: date) -> tuple[str, date]:
    """The round of the compound that began last, on or before ``today`` (the one officers are chasing)."""
    found = session.execute(
        select(rounds.c["round"], rounds.c.on)
        .where(rounds.c.compound == compound, rounds.c.on <= today)
        .order_by(rounds.c.starts_at.desc(), rounds.c["round"].desc())
        .limit(1)
    ).first()
    if found is None:
        raise NotFound(f"小区 {compound} 今天之前还没有检测轮次 (no round has begun)", code="round-none")
    return found[0], found[1]


def unreached(runtime: Runtime, caller: Caller, compound: str, building: str | None) -> dict[str, Any]:
    """Households of the caller's buildings none of whose members has been sampled in the current round."""
    wanted = visible_buildings(caller, compound, building)
    with runtime.database.reading() as session:
        round_id, day = current_round(session, compound, runtime.settings.local_today())
        rows = everyone(session, compound, round_id, wanted)
        rooms = dict(
            session.execute(
                select(households.c.household, households.c.room).where(households.c.compound == compound)
            ).all()
        )
    homes: dict[str, dict[str, Any]] = {}
    for _resident, household, building_id, floor, status in rows:
        home = homes.setdefault(household, {"building": building_id, "floor": floor, "residents": 0, "reached": False})
        home["residents"] += 1
        home["reached"] = home["reached"] or status is not None
    per_building: dict[str, list[dict[str, Any]]] = {}
    for household, home in homes.items():
        if not home["reached"]:
            per_building.setdefault(home["building"], []).append(
                {
                    "household": local_id(household),
                    "floor": home["floor"],
                    "room": rooms.get(household, 0),
                    "residents": home["residents"],
                }
            )
    return {
        "round": local_id(round_id),
        "on": day,
        "buildings": [
            {
                "building": local_id(b),
                "households": sorted(found, key=lambda h: (h["floor"], h["room"], h["household"])),
            }
            for b, found in sorted(per_building.items(), key=lambda item: natural_key(item[0]))
        ],
    }


def counts(runtime: Runtime, compound: str, round: str, building: str | None) -> dict[str, Any]:
    """Aggregates only: "Building 7: 198 of 200 tested"."""
    round_id = global_id(compound, round)
    with runtime.database.reading() as session:
        require_round(session, round_id, round)
        rows = everyone(session, compound, round_id, {building} if building else None)
    per_building: dict[str, dict[str, int]] = {}
    for _resident, _household, building_id, _floor, status in rows:
        entry = per_building.setdefault(
            building_id,
            {"residents": 0, "tested": 0, "negative": 0, "awaiting_result": 0, "to_resample": 0, "positive": 0},
        )
        entry["residents"] += 1
        entry["tested"] += tested(status)
        entry["negative"] += status in ("negative", "antigen-negative")
        entry["awaiting_result"] += status in AWAITING_RESULT
        entry["to_resample"] += status in TO_RESAMPLE
        entry["positive"] += status == "positive"
    listed = [
        {
            "building": local_id(b),
            **entry,
            "text": f"Building {local_id(b)}: {entry['tested']} of {entry['residents']} tested",
        }
        for b, entry in sorted(per_building.items(), key=lambda item: natural_key(item[0]))
    ]
    return {
        "round": round,
        "residents": sum(e["residents"] for e in per_building.values()),
        "tested": sum(e["tested"] for e in per_building.values()),
        "buildings": listed,
    }
