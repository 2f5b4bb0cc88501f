"""HTTP routes of the testing service, one module per area of the work."""

from fastapi import APIRouter

from services.testing.api import cases, fhir, labfiles, photo_links, points, results, rounds

router = APIRouter()
router.include_router(points.router)
router.include_router(rounds.router)
router.include_router(results.router)
router.include_router(labfiles.router)
router.include_router(cases.router)
router.include_router(photo_links.router)
router.include_router(fhir.router)
