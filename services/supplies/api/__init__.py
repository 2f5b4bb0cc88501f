"""HTTP routes of the supplies service, one module per area of the committee's work."""

from fastapi import APIRouter

from services.supplies.api import batches, deliveries, donations, medicine, policy

router = APIRouter()
router.include_router(policy.router)
router.include_router(batches.router)
router.include_router(deliveries.router)
router.include_router(medicine.router)
router.include_router(donations.router)
