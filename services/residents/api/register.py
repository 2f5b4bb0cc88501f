"""Buildings, households and residents: registration, identity (sealed, masked, audited), erasure, import."""

from fastapi import APIRouter

router = APIRouter(tags=["register"])
