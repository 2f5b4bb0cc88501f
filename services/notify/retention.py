"""Retention in the notify service: residents' questions (free text, perhaps personal) are deleted.

Kept: building groups, channels and their secrets (the groups keep working after the lockdown), messages
and the delivery log (they never carried names or health details), question groups and the FAQ.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from juwei.service import Runtime
from services.notify import views


def scrub(runtime: Runtime, session: Session, compound: str) -> dict[str, Any]:
    questions = views.questions
    asked = int(session.execute(select(func.count()).where(questions.c.compound == compound)).scalar() or 0)
    session.execute(delete(questions).where(questions.c.compound == compound))
    return {"questions": asked}
