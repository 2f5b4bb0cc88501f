"""HTTP routes of the notify service, one module per area of the committee's work."""

from fastapi import APIRouter

from services.notify.api import account, board, groups, messages, questions, subscriptions
from services.notify.calls import api as calls

router = APIRouter()
router.include_router(groups.router)
router.include_router(messages.router)
router.include_router(account.router)
router.include_router(questions.router)
router.include_router(board.router)
router.include_router(subscriptions.router)
router.include_router(calls.router)
