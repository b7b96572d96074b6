"""``GET /webhook/jobs/{id}``: the integrator's view of one job."""

import uuid

from fastapi import APIRouter

from producers.deps import Services, Tenant
from producers.errors import ApiError
from schemas.webhooks import ErrorResponse, JobStatusView

router = APIRouter(prefix="/webhook", tags=["jobs"])


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatusView,
    responses={404: {"model": ErrorResponse, "description": "No such job for this tenant (yet)."}},
    summary="The projected state of a job",
)
async def get_job(job_id: uuid.UUID, services: Services, tenant_id: Tenant) -> JobStatusView:
    job = await services.jobs.get(job_id, tenant_id)
    if job is None:
        raise ApiError(
            404,
            "job_not_found",
            f"no job {job_id} for tenant {tenant_id!r}; a job just accepted appears within moments",
        )
    return job
