"""Idempotent submission: each (tenant, idempotency key) becomes one job, appended once.

A request claims its key with a pending receipt before it appends, and marks the receipt appended after the broker
acknowledged. A redelivery finds the receipt: the same body gets the first answer again and appends nothing; a
different body is a conflict. A redelivery that arrives while the first is still appending waits for it.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import TenantScope, scoped
from schemas.events import JobRequested
from schemas.operational_tables import webhook_receipts


@dataclass(frozen=True)
class Receipt:
    request_sha256: str
    job_id: uuid.UUID
    event_id: uuid.UUID
    correlation_id: str
    state: str
    log_partition: int | None
    log_offset: int | None
    created_at: datetime

    @property
    def appended(self) -> bool:
        return self.state == "appended"


def request_fingerprint(event: JobRequested) -> str:
    """What makes two submissions "the same": job type, parameters, labels and correlation id, not the bytes."""
    payload = event.payload
    canonical: dict[str, Any] = {
        "job_type": payload.job_type,
        "parameters": payload.parameters,
        "metadata": payload.metadata,
        "correlation_id": event.correlation_id,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ReceiptStore(Protocol):
    async def claim(self, tenant_id: str, key: str, receipt: Receipt) -> Receipt | None:
        """Stores ``receipt`` unless the key has one; returns the existing receipt, or None when this one won."""
        ...

    async def get(self, tenant_id: str, key: str) -> Receipt | None: ...

    async def mark_appended(self, tenant_id: str, key: str, partition: int, offset: int) -> None: ...

    async def release(self, tenant_id: str, key: str) -> None:
        """Drops a pending claim whose event did not reach the log, so that a retry can claim it again."""
        ...


class SqlReceiptStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, tenant_id: str, key: str, receipt: Receipt) -> Receipt | None:
        statement = (
            insert(webhook_receipts)
            .values(
                tenant_id=tenant_id,
                idempotency_key=key,
                request_sha256=receipt.request_sha256,
                job_id=receipt.job_id,
                event_id=receipt.event_id,
                correlation_id=receipt.correlation_id,
                state="pending",
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
            .returning(webhook_receipts.c.job_id)
        )
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            won = (await connection.execute(statement)).first()
        if won is not None:
            return None
        return await self.get(tenant_id, key)

    async def get(self, tenant_id: str, key: str) -> Receipt | None:
        columns = [webhook_receipts.c[name] for name in Receipt.__dataclass_fields__]
        query = select(*columns).where(
            webhook_receipts.c.tenant_id == tenant_id, webhook_receipts.c.idempotency_key == key
        )
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            row = (await connection.execute(query)).mappings().first()
        return Receipt(**row) if row else None

    async def mark_appended(self, tenant_id: str, key: str, partition: int, offset: int) -> None:
        statement = (
            update(webhook_receipts)
            .where(webhook_receipts.c.tenant_id == tenant_id, webhook_receipts.c.idempotency_key == key)
            .values(state="appended", log_partition=partition, log_offset=offset, updated_at=datetime.now(UTC))
        )
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            await connection.execute(statement)

    async def release(self, tenant_id: str, key: str) -> None:
        statement = delete(webhook_receipts).where(
            webhook_receipts.c.tenant_id == tenant_id,
            webhook_receipts.c.idempotency_key == key,
            webhook_receipts.c.state == "pending",
        )
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            await connection.execute(statement)
