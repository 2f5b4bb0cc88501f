"""HTTP routes of the residents service, one module per area of the committee's work."""

from fastapi import APIRouter

from services.residents.api import cap, compounds, imports, reach, register, survey, teams, workgroups, zones

router = APIRouter()
router.include_router(register.router)
router.include_router(reach.router)
router.include_router(imports.router)
router.include_router(teams.router)
router.include_router(workgroups.router)
router.include_router(survey.router)
router.include_router(zones.router)
router.include_router(cap.router)
router.include_router(compounds.router)
