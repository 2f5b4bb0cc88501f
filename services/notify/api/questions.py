"""Routes of residents' questions: officers pass them on, staff answer the common ones, the FAQ keeps them."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from contracts.access import CompoundPeople, Officers, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from juwei.paging import Limit
from services.notify.application import questions
from services.notify.models import Answered, AnswerIn, FaqOut, QuestionGroups, QuestionIn, QuestionOut

router = APIRouter(tags=["questions"])


@router.post(
    "/compounds/{compound}/buildings/{building}/questions",
    status_code=201,
    response_model=QuestionOut,
    summary="Pass on a resident's question from a building",
)
def submit_question(
    compound: CompoundId, building: LocalId, body: QuestionIn, caller: Officers, unit: Unit
) -> QuestionOut:
    return questions.submit_question(unit, caller, building, body)


@router.get(
    "/compounds/{compound}/question-groups",
    response_model=QuestionGroups,
    summary="Questions grouped as near-duplicates, most asked first",
)
def ranked_groups(
    compound: CompoundId,
    caller: Staff,
    runtime: RuntimeOf,
    status: Literal["open", "answered", "all"] = "open",
    limit: Limit = 100,
) -> dict[str, Any]:
    return questions.ranked_groups(runtime, compound, status, limit)


@router.post(
    "/compounds/{compound}/question-groups/{group}/answer",
    status_code=201,
    response_model=Answered,
    summary="Answer a group of questions: the answer goes to every building that asked, and to the FAQ",
)
def answer_group(compound: CompoundId, group: LocalId, body: AnswerIn, caller: Staff, unit: Unit) -> Answered:
    return questions.answer_group(unit, caller, group, body)


@router.get(
    "/compounds/{compound}/faq", response_model=FaqOut, summary="The compound's answered questions, most asked first"
)
def list_faq(compound: CompoundId, caller: CompoundPeople, runtime: RuntimeOf) -> dict[str, Any]:
    return questions.list_faq(runtime, compound)
