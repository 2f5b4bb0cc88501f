"""Retention in the notify service: residents' questions (free text, perhaps personal) are deleted.

Webhook subscriptions' settled deliveries lose their bodies (the events as a subscriber saw them: health fields
for a subscriber granted them); their log of attempts stays. Kept: building groups, channels and their secrets
(the groups keep working after the lockdown), messages and the delivery log (they never carried names or health
details), question groups and the FAQ. The unreachable households' marks and their calls (lockdown work, and a
mark hints at who is old) are deleted: a new lockdown marks them anew.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from juwei.service import Runtime
from juwei.session import Session
from services.notify import views
from services.notify.calls import views as calls


def scrub(runtime: Runtime, session: Session, compound: str) -> dict[str, Any]:
    questions = views.questions
    asked = int(session.execute(select(func.count()).where(questions.c.compound == compound)).scalar() or 0)
    session.execute(delete(questions).where(questions.c.compound == compound))
    sent = views.subscription_deliveries
    blanked = session.execute(
        update(sent).where(sent.c.compound == compound, sent.c.status.in_(["sent", "dead"])).values(body="{}")
    ).rowcount
    called = session.execute(delete(calls.calls).where(calls.calls.c.compound == compound)).rowcount
    session.execute(delete(calls.unreachable).where(calls.unreachable.c.compound == compound))
    return {"questions": asked, "subscription_bodies": blanked, "calls": int(called or 0)}
