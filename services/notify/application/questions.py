"""Residents' questions: information officers pass them on, staff answer the common ones, the FAQ keeps them.

Questions are grouped as they arrive (near-duplicates by character-bigram cosine similarity, see
``domain.closest_group``); staff see the groups ranked by how often and how widely they were asked. An
answer goes to every building that asked and joins the compound's FAQ.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from contracts.ids import global_id, local_id
from juwei.aggregate import Conflict, Invalid, NotFound
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.notify import handlers
from services.notify.application.groups import require_group
from services.notify.domain import Answer, Question, has_id_number, similarity
from services.notify.models import Answered, AnswerIn, QuestionIn, QuestionOut
from services.notify.rules import render_texts
from services.notify.views import faq, question_groups, questions


def submit_question(unit: UnitOfWork, caller: Caller, building: str, body: QuestionIn) -> QuestionOut:
    """Pass on a resident's question from a building; answers already given to similar ones come back."""
    compound = unit.compound
    caller.require_scope(compound, building)
    local = f"q-{uuid.uuid4().hex[:12]}"
    with unit:
        target = require_group(unit.session, compound, building)
        unit.load_or_new(Question, global_id(compound, local)).submit(target, body.text)
    with unit.runtime.database.reading() as session:
        group = session.execute(
            select(questions.c.question_group).where(questions.c.question == global_id(compound, local))
        ).scalar_one()
        answered = session.execute(select(faq).where(faq.c.compound == compound)).mappings().all()
    similar = sorted(((similarity(body.text, row["question"]), row) for row in answered), key=lambda pair: -pair[0])
    return QuestionOut(
        question=local,
        building=building,
        question_group=local_id(group),
        faq=[_faq_out(row) for score, row in similar[:3] if score >= 0.5],
    )


def ranked_groups(runtime: Runtime, compound: str, status: str, limit: int) -> dict[str, Any]:
    """Questions grouped as near-duplicates, most asked (and most widely) first."""
    query = select(question_groups).where(question_groups.c.compound == compound)
    if status == "open":
        query = query.where(question_groups.c.answer.is_(None))
    elif status == "answered":
        query = query.where(question_groups.c.answer.is_not(None))
    with runtime.database.reading() as session:
        rows = session.execute(query).mappings().all()
        members = session.execute(
            select(questions.c.question_group, questions.c.building, questions.c.text, questions.c.submitted_at)
            .where(questions.c.compound == compound)
            .order_by(questions.c.submitted_at)
        ).all()
    per_group: dict[str, dict[str, int]] = {}
    examples: dict[str, list[str]] = {}
    for group, building, text, _at in members:
        counts = per_group.setdefault(group, {})
        counts[local_id(building)] = counts.get(local_id(building), 0) + 1
        if text not in examples.setdefault(group, []) and len(examples[group]) < 5:
            examples[group].append(text)
    ranked = sorted(
        rows, key=lambda row: (-row["size"], -len(per_group.get(row["question_group"], {})), -_stamp(row["last_at"]))
    )
    return {
        "groups": [
            {
                "question_group": local_id(row["question_group"]),
                "text": row["text"],
                "asked": row["size"],
                "buildings": dict(sorted(per_group.get(row["question_group"], {}).items())),
                "examples": examples.get(row["question_group"], []),
                "first_at": row["first_at"],
                "last_at": row["last_at"],
                "answer": local_id(row["answer"]) if row["answer"] else None,
            }
            for row in ranked[:limit]
        ]
    }


def _stamp(moment: datetime) -> float:
    return moment.timestamp()


def answer_group(unit: UnitOfWork, caller: Caller, group: str, body: AnswerIn) -> Answered:
    """Answer a group of questions: the answer goes to every building that asked, and to the FAQ."""
    compound = unit.compound
    for text in (body.question, body.answer, *body.policy_points):
        if has_id_number(text):
            raise Invalid(
                "the text contains what looks like an ID-card number: never broadcast one", code="identity-in-text"
            )
    target = global_id(compound, group)
    local = f"ans-{uuid.uuid4().hex[:12]}"
    message_local = f"m-{handlers.derived_id(target, local)}"
    with unit:
        session = unit.session
        row = session.execute(select(question_groups).where(question_groups.c.question_group == target)).first()
        if row is None:
            raise NotFound(f"no question group {group}")
        if row.answer is not None:
            raise Conflict(f"question group {group} was already answered", code="already-answered")
        asked = session.execute(
            select(questions.c.question, questions.c.building).where(
                questions.c.question_group == target, questions.c.answer.is_(None)
            )
        ).all()
        buildings = sorted({building for _, building in asked})
        for building in buildings:
            require_group(session, compound, local_id(building))
        unit.load_or_new(Answer, global_id(compound, local)).give(
            [q for q, _ in asked],
            buildings,
            global_id(compound, message_local),
            body.question,
            body.answer,
            body.policy_points,
        )
        params = {
            "question": body.question,
            "answer": body.answer,
            "points": [p for p in body.policy_points if p.strip()],
            "buildings": len(buildings),
        }
        handlers.compose(
            unit.runtime,
            session,
            compound,
            message_id=global_id(compound, message_local),
            kind="answer",
            priority=body.priority,
            buildings=buildings,
            texts=render_texts("answer", params),
            template="answer",
            actor=caller.key_id,
        )
    return Answered(
        answer=local, message=message_local, buildings=[local_id(b) for b in buildings], questions=len(asked)
    )


def _faq_out(row: Any) -> dict[str, Any]:
    return {
        "answer": local_id(row["answer"]),
        "question": row["question"],
        "text": row["text"],
        "policy_points": json.loads(row["policy_points"]),
        "asked": row["asked"],
        "buildings": len(json.loads(row["buildings"])),
        "answered_at": row["answered_at"],
    }


def list_faq(runtime: Runtime, compound: str) -> dict[str, Any]:
    """The compound's answered questions, most asked first."""
    with runtime.database.reading() as session:
        rows = (
            session.execute(
                select(faq).where(faq.c.compound == compound).order_by(faq.c.asked.desc(), faq.c.answered_at.desc())
            )
            .mappings()
            .all()
        )
    return {"faq": [_faq_out(row) for row in rows]}
