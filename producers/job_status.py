"""Reading a job's projected state for ``GET /webhook/jobs/{id}``."""

import uuid
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import TenantScope, scoped
from schemas.read_model import pipeline_jobs, projection_checkpoints
from schemas.webhooks import JobStatusView

_columns = [
    pipeline_jobs.c.id.label("job_id"),
    *(pipeline_jobs.c[name] for name in JobStatusView.model_fields if name != "job_id"),
]


class JobReader(Protocol):
    async def get(self, job_id: uuid.UUID, tenant_id: str) -> JobStatusView | None: ...

    async def projected_to(self, partition: int) -> int:
        """The next offset of ``partition`` the read model will apply: everything before it is in the tables."""
        ...

    async def in_flight(self, tenant_id: str) -> int:
        """How many of the tenant's jobs are queued, running or retrying."""
        ...


class SqlJobReader:
    def __init__(self, engine: AsyncEngine, projection: str, topic: str) -> None:
        self._engine = engine
        self._projection = projection
        self._topic = topic

    async def projected_to(self, partition: int) -> int:
        query = select(projection_checkpoints.c.next_offset).where(
            projection_checkpoints.c.projection == self._projection,
            projection_checkpoints.c.topic == self._topic,
            projection_checkpoints.c.partition == partition,
        )
        async with self._engine.connect() as connection:
            offset = (await connection.execute(query)).scalar()
        return int(offset or 0)

    async def in_flight(self, tenant_id: str) -> int:
        query = select(func.count()).where(
            pipeline_jobs.c.tenant_id == tenant_id,
            pipeline_jobs.c.status.in_(("QUEUED", "RUNNING", "RETRYING")),  # ix_pipeline_jobs_in_flight
        )
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            return int((await connection.execute(query)).scalar_one())

    async def get(self, job_id: uuid.UUID, tenant_id: str) -> JobStatusView | None:
        query = select(*_columns).where(pipeline_jobs.c.id == job_id, pipeline_jobs.c.tenant_id == tenant_id)
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            row = (await connection.execute(query)).mappings().first()
        return JobStatusView.model_validate(dict(row)) if row else None
