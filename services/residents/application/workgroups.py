"""Work groups of the whole compound, when volunteers can work, and who fits a task (人尽其才: people where
they fit, beyond the three building roles)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from contracts.ids import global_id, local_id
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.residents.domain import Volunteer
from services.residents.domain.workgroups import Candidate, WorkGroup, slots, suggest
from services.residents.rosters import availability, work_group_members, work_groups
from services.residents.views import volunteers
from services.residents.volunteering import AvailabilityIn, WorkGroupIn


def name_group(unit: UnitOfWork, group: str, body: WorkGroupIn) -> None:
    """Set up a work group, or rename it."""
    with unit:
        unit.load_or_new(WorkGroup, global_id(unit.compound, group)).rename(body.name, body.description)


def join(unit: UnitOfWork, caller: Caller, group: str, volunteer: str) -> bool:
    """A volunteer joins a work group; checked against their own stream (enlisted and serving)."""
    with unit:
        team = unit.load(WorkGroup, global_id(unit.compound, group))
        person = unit.load_or_new(Volunteer, global_id(unit.compound, volunteer))
        if person.building is not None:
            caller.require_scope(unit.compound, local_id(person.building))
        return team.join(person.id, person.building, serving=person.serving)


def leave(unit: UnitOfWork, caller: Caller, group: str, volunteer: str, reason: str) -> None:
    with unit:
        team = unit.load(WorkGroup, global_id(unit.compound, group))
        person = unit.load_or_new(Volunteer, global_id(unit.compound, volunteer))
        home = team.members.get(person.id) or person.building
        if home is not None:
            caller.require_scope(unit.compound, local_id(home))
        team.leave(person.id, reason)


def set_availability(unit: UnitOfWork, caller: Caller, volunteer: str, body: AvailabilityIn) -> dict[str, Any]:
    """Replace when a volunteer can work; every slot is checked before anything is recorded."""
    chosen = slots((slot.days, slot.start, slot.end) for slot in body.slots)
    with unit:
        person = unit.load(Volunteer, global_id(unit.compound, volunteer))
        assert person.building is not None
        caller.require_scope(unit.compound, local_id(person.building))
        changed = person.set_availability(chosen)
    return {"volunteer": volunteer, "building": local_id(person.building), "availability": chosen, "changed": changed}


def _roster(runtime: Runtime, compound: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Serving volunteers (id, building, skills, availability) and the members of each group, local ids."""
    with runtime.database.reading() as session:
        people = session.execute(
            select(volunteers.c.volunteer, volunteers.c.building, volunteers.c.skills, availability.c.slots)
            .outerjoin(availability, availability.c.volunteer == volunteers.c.volunteer)
            .where(volunteers.c.compound == compound)
        ).all()
        members = session.execute(
            select(work_group_members.c.work_group, work_group_members.c.volunteer).where(
                work_group_members.c.compound == compound
            )
        ).all()
    groups: dict[str, list[str]] = {}
    for group, volunteer in members:
        groups.setdefault(local_id(volunteer), []).append(local_id(group))
    roster = [
        {
            "volunteer": local_id(volunteer),
            "building": local_id(building),
            "skills": json.loads(skills),
            "availability": json.loads(slots_) if slots_ else [],
            "groups": sorted(groups.get(local_id(volunteer), [])),
        }
        for volunteer, building, skills, slots_ in people
    ]
    return sorted(roster, key=lambda p: p["volunteer"]), groups


def list_groups(runtime: Runtime, caller: Caller, compound: str) -> dict[str, Any]:
    """Every work group with its members; a key of some buildings sees the members from those buildings."""
    with runtime.database.reading() as session:
        rows = session.execute(select(work_groups).where(work_groups.c.compound == compound)).mappings().all()
    roster, _ = _roster(runtime, compound)
    seen = [p for p in roster if caller.buildings is None or p["building"] in caller.buildings]
    listed = []
    for row in sorted(rows, key=lambda row: row["work_group"]):
        group = local_id(row["work_group"])
        members = [
            {k: p[k] for k in ("volunteer", "building", "skills", "availability")} for p in seen if group in p["groups"]
        ]
        listed.append({"group": group, "name": row["name"], "description": row["description"], "members": members})
    return {"groups": listed}


def suggestions(
    runtime: Runtime,
    caller: Caller,
    compound: str,
    *,
    skill: str | None,
    group: str | None,
    day: str | None,
    start: str | None,
    end: str | None,
    limit: int,
) -> dict[str, Any]:
    """Who fits a task by skill (or work group) and the hours they are free, best first."""
    if group is not None:
        with runtime.database.reading() as session:
            named = session.execute(
                select(work_groups.c.work_group).where(work_groups.c.work_group == global_id(compound, group))
            ).first()
        if named is None:
            raise WorkGroup.unknown(global_id(compound, group))
    roster, _ = _roster(runtime, compound)
    people = {p["volunteer"]: p for p in roster if caller.buildings is None or p["building"] in caller.buildings}
    fits = suggest(
        (
            Candidate(p["volunteer"], p["building"], p["skills"], p["groups"], p["availability"])
            for p in people.values()
        ),
        skill=skill,
        group=group,
        day=day,
        start=start,
        end=end,
        limit=limit,
    )
    return {
        "skill": skill,
        "group": group,
        "day": day,
        "start": start,
        "end": end,
        "suggestions": [
            {
                **people[fit.volunteer],
                "skill_match": fit.skill_match,
                "free_share": fit.availability,
                "score": fit.score,
                "reasons": fit.reasons,
            }
            for fit in fits
        ],
    }
