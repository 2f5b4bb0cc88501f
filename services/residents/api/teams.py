"""Staff coverage, volunteers, their skills and roles."""

from fastapi import APIRouter

router = APIRouter(tags=["teams"])
