"""What the notifier reads from Postgres: a job's type and labels, and its tenant's notification settings."""

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.tenants import slack_context
from kernel.secret_box import SecretBox
from notifier.targets import TenantNotifications
from schemas.operational_tables import tenants
from schemas.read_model import pipeline_jobs


class SqlJobDirectory:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def job(self, job_id: str) -> tuple[str, dict[str, str]] | None:
        query = select(pipeline_jobs.c.job_type, pipeline_jobs.c.metadata).where(
            pipeline_jobs.c.id == uuid.UUID(job_id)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return (row[0], dict(row[1] or {})) if row else None

    async def tenant(self, tenant_id: str) -> TenantNotifications | None:
        query = select(tenants.c.notify_slack_webhook_url, tenants.c.notify_emails, tenants.c.notify_on).where(
            tenants.c.id == tenant_id
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        slack = self._box.open(row[0], slack_context(tenant_id)) if row[0] else None
        return TenantNotifications(slack, row[1], row[2])
