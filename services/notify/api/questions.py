"""Residents' questions: information officers pass them on, staff answer the common ones, the FAQ keeps them.

Questions are grouped as they arrive (near-duplicates by character-bigram cosine similarity, see
``domain.closest_group``); staff see the groups ranked by how often and how widely they were asked. An
answer goes to every building that asked and joins the compound's FAQ.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from juwei.auth import CompoundId, LocalId
from juwei.paging import Limit
from juwei.problems import Problem
from services.notify import handlers
from services.notify.api.common import (
    Anyone,
    Command,
    Officers,
    StaffOnly,
    global_id,
    local_id,
    require_group,
    runtime_of,
)
from services.notify.domain import Answer, Question, has_id_number, similarity
from services.notify.rules import render_texts
from services.notify.views import faq, question_groups, questions

router = APIRouter(tags=["questions"])


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "我们楼的阳性什么时候转运？"}]})
    text: str = Field(min_length=1, max_length=500)


class QuestionOut(BaseModel):
    question: str
    building: str
    question_group: str
    faq: list[dict[str, Any]] = Field(default_factory=list, description="answers already given to similar questions")


@router.post(
    "/compounds/{compound}/buildings/{building}/questions",
    status_code=201,
    response_model=QuestionOut,
    summary="Pass on a resident's question from a building",
)
def submit_question(
    compound: CompoundId, building: LocalId, body: QuestionIn, request: Request, caller: Officers
) -> QuestionOut:
    caller.require_scope(compound, building)
    local = f"q-{uuid.uuid4().hex[:12]}"
    command = Command(request, caller, compound)
    with command.unit():
        target = require_group(command.session, compound, building)
        command.load(Question, local).submit(target, body.text)
    with command.runtime.database.reading() as session:
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


@router.get("/compounds/{compound}/question-groups", summary="Questions grouped as near-duplicates, most asked first")
def ranked_groups(
    compound: CompoundId,
    request: Request,
    caller: StaffOnly,
    status: Literal["open", "answered", "all"] = "open",
    limit: Limit = 100,
) -> dict[str, Any]:
    caller.require_scope(compound)
    query = select(question_groups).where(question_groups.c.compound == compound)
    if status == "open":
        query = query.where(question_groups.c.answer.is_(None))
    elif status == "answered":
        query = query.where(question_groups.c.answer.is_not(None))
    with runtime_of(request).database.reading() as session:
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


class AnswerIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "楼里的阳性病例什么时候转运？",
                    "answer": "转运由区里统一安排，确定时间后会第一时间在本群通知。",
                    "policy_points": ["阳性病例转运由区疫情防控指挥部统一调度", "转运后楼栋公共区域当天消杀"],
                }
            ]
        },
    )
    question: str = Field(min_length=1, max_length=200, description="the question as it will be published")
    answer: str = Field(min_length=1, max_length=4000)
    policy_points: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=20)
    priority: Literal["normal", "important", "critical"] = "normal"


class Answered(BaseModel):
    answer: str
    message: str
    buildings: list[str]
    questions: int


@router.post(
    "/compounds/{compound}/question-groups/{group}/answer",
    status_code=201,
    response_model=Answered,
    summary="Answer a group of questions: the answer goes to every building that asked, and to the FAQ",
)
def answer_group(compound: CompoundId, group: LocalId, body: AnswerIn, request: Request, caller: StaffOnly) -> Answered:
    caller.require_scope(compound)
    for text in (body.question, body.answer, *body.policy_points):
        if has_id_number(text):
            raise Problem(
                422, "the text contains what looks like an ID-card number: never broadcast one", "identity-in-text"
            )
    target = global_id(compound, group)
    local = f"ans-{uuid.uuid4().hex[:12]}"
    message_local = f"m-{handlers.derived_id(target, local)}"
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        row = session.execute(select(question_groups).where(question_groups.c.question_group == target)).first()
        if row is None:
            raise Problem(404, f"no question group {group}", "not-found")
        if row.answer is not None:
            raise Problem(409, f"question group {group} was already answered", "already-answered")
        asked = session.execute(
            select(questions.c.question, questions.c.building).where(
                questions.c.question_group == target, questions.c.answer.is_(None)
            )
        ).all()
        buildings = sorted({building for _, building in asked})
        for building in buildings:
            require_group(session, compound, local_id(building))
        command.load(Answer, local).give(
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
            command.runtime,
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


@router.get("/compounds/{compound}/faq", summary="The compound's answered questions, most asked first")
def list_faq(compound: CompoundId, request: Request, caller: Anyone) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        rows = (
            session.execute(
                select(faq).where(faq.c.compound == compound).order_by(faq.c.asked.desc(), faq.c.answered_at.desc())
            )
            .mappings()
            .all()
        )
    return {"faq": [_faq_out(row) for row in rows]}
