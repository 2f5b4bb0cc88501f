"""Retention in the testing service: every per-person health row of the compound goes, the counts stay.

Deleted: who was sampled in which tube, each resident's status in each round, antigen self-reports and
their photos, cases and close contacts, door-to-door lists, the bedridden flag, and the files of the
disinfection photos (they show stairwells and lifts, and sometimes whoever was in them: like the other
per-building data they go once the lockdown is over; a signed link to one then gets 410). Kept: rounds,
points, call plans, tubes with their counts and results, disinfection records (when, which areas, the photos'
digests); and, in the retention record, per round how many residents ended in each status, antigen results,
and cases by status.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, false, func, select, update

from contracts.ids import local_id
from juwei.retention import shred_subjects
from juwei.service import Runtime
from juwei.session import Session
from services.testing import views
from services.testing.photos import PhotoAlbum


def _by(session: Session, table: Any, compound: str, *columns: Any) -> dict[str, Any]:
    rows = session.execute(select(*columns, func.count()).where(table.c.compound == compound).group_by(*columns)).all()
    out: dict[str, Any] = defaultdict(dict)
    for *keys, count in rows:
        if len(keys) == 1:
            out[str(keys[0])] = int(count)
        else:
            out[local_id(str(keys[0]))][str(keys[1])] = int(count)
    return dict(out)


def scrub(runtime: Runtime, session: Session, compound: str) -> dict[str, Any]:
    rr, antigen, cases = views.round_residents, views.antigen, views.cases
    report = {
        "round_status": _by(session, rr, compound, rr.c["round"], rr.c.status),
        "antigen_results": _by(session, antigen, compound, antigen.c["round"], antigen.c.result),
        "cases": _by(session, cases, compound, cases.c.status),
        "samples": int(session.execute(select(func.count()).where(views.samples.c.compound == compound)).scalar() or 0),
    }
    photos = set(
        session.execute(
            select(antigen.c.photo).where(antigen.c.compound == compound, antigen.c.photo.is_not(None))
        ).scalars()
    )
    records = session.execute(
        select(views.disinfections.c.photos).where(views.disinfections.c.compound == compound)
    ).scalars()
    disinfection_photos = {str(p["photo"]) for listed in records for p in json.loads(listed)}
    album = PhotoAlbum(runtime.settings.data_dir)
    removed_photos = removed_disinfection = 0
    for photo in photos | disinfection_photos:
        for content_type in ("image/jpeg", "image/png", "image/webp"):
            path = album._path(compound, photo, content_type)
            if path.exists():
                path.unlink()
                removed_photos += 1
                removed_disinfection += photo in disinfection_photos
    removed = 0
    for table in (views.samples, rr, antigen, views.close_contacts, cases, views.door_to_door):
        removed += int(session.execute(delete(table).where(table.c.compound == compound)).rowcount or 0)
    session.execute(update(views.residents).where(views.residents.c.compound == compound).values(bedridden=false()))
    report |= {
        "rows_deleted": removed,
        "photos_deleted": removed_photos,
        "disinfection_photos_deleted": removed_disinfection,
        "subject_keys_shredded": shred_subjects(session, [f"{compound}:"]),
    }
    return report
