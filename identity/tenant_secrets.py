"""Named secrets of a tenant that its jobs refer to (``{"secret": "crm-token"}``), sealed at rest.

Operators set them (``zixly tenants secrets set``); the worker opens one when a job that names it runs, reading as
its own role under row-level security, so a job of one tenant cannot name another tenant's secret into its request.
"""

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import TenantScope, scoped
from kernel.secret_box import SecretBox
from schemas.identity_tables import tenant_secrets
from schemas.operational_tables import tenants

MAX_VALUE_CHARS = 16_384


def value_context(tenant_id: str, name: str) -> str:
    """Binds a sealed value to its tenant and name: copied into another row, it does not open."""
    return f"tenant_secrets:{tenant_id}:{name}"


class TenantSecretStore:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def set(self, tenant_id: str, name: str, value: str, actor: str) -> bool:
        """Stores or replaces the value; True when it replaced one."""
        if not value or len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"a secret's value has 1 to {MAX_VALUE_CHARS:,} characters")
        sealed = self._box.seal(value, value_context(tenant_id, name))
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            if (await connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is None:
                raise ValueError(f"unknown tenant {tenant_id!r}")
            existed = (
                await connection.execute(
                    select(tenant_secrets.c.id).where(
                        tenant_secrets.c.tenant_id == tenant_id, tenant_secrets.c.name == name
                    )
                )
            ).first() is not None
            statement = insert(tenant_secrets).values(
                id=uuid.uuid4(), tenant_id=tenant_id, name=name, value_sealed=sealed, created_by=actor
            )
            await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["tenant_id", "name"],
                    set_={"value_sealed": sealed, "created_by": actor, "updated_at": datetime.now(UTC)},
                )
            )
        return existed

    async def delete(self, tenant_id: str, name: str) -> bool:
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            gone = await connection.execute(
                delete(tenant_secrets).where(tenant_secrets.c.tenant_id == tenant_id, tenant_secrets.c.name == name)
            )
        return bool(gone.rowcount)

    async def names(self, tenant_id: str) -> list[tuple[str, str, datetime]]:
        """(name, set by, when) of each of the tenant's secrets; never the values."""
        query = (
            select(tenant_secrets.c.name, tenant_secrets.c.created_by, tenant_secrets.c.updated_at)
            .where(tenant_secrets.c.tenant_id == tenant_id)
            .order_by(tenant_secrets.c.name)
        )
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            return [(name, by, at) for name, by, at in await connection.execute(query)]

    async def value(self, tenant_id: str, name: str) -> str | None:
        """The opened value, or None when the tenant has no secret of that name."""
        query = select(tenant_secrets.c.value_sealed).where(
            tenant_secrets.c.tenant_id == tenant_id, tenant_secrets.c.name == name
        )
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            sealed = (await connection.execute(query)).scalar_one_or_none()
        return None if sealed is None else self._box.open(sealed, value_context(tenant_id, name))
