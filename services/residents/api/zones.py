"""Zone status: sealed, controlled, precaution, and when the next change comes."""

from fastapi import APIRouter

router = APIRouter(tags=["zones"])
