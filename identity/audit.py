"""The audit log: who did what, when, from where, to what, and how it ended. Append-only in the database.

Each service writes its own entries in the tenant scope of the entry, so row-level security also keeps one
tenant's entries away from another tenant's admins.
"""

import getpass
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import Engine, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import EVERY_TENANT, TenantScope, scoped, scoped_sync
from kernel.logging import get_logger
from schemas.identity_tables import audit_log

log = get_logger(__name__)
Outcome = Literal["ok", "denied", "failed"]


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    tenant_id: str | None
    target: str | None = None
    outcome: Outcome = "ok"
    ip: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "action": self.action,
            "tenant_id": self.tenant_id,
            "target": self.target,
            "outcome": self.outcome,
            "ip": self.ip,
            "detail": self.detail,
        }

    @property
    def scope(self) -> TenantScope:
        return TenantScope.of(self.tenant_id) if self.tenant_id else EVERY_TENANT


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


class AuditTrail(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


class SqlAuditTrail:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, entry: AuditEntry) -> None:
        await record(self._engine, entry)


async def record(engine: AsyncEngine, entry: AuditEntry) -> None:
    async with scoped(engine, entry.scope) as connection:
        await connection.execute(insert(audit_log).values(**entry.values()))
    log.info("audit", action=entry.action, actor=entry.actor, tenant_id=entry.tenant_id, outcome=entry.outcome)


def record_sync(engine: Engine, entry: AuditEntry) -> None:
    with scoped_sync(engine, entry.scope) as connection:
        connection.execute(insert(audit_log).values(**entry.values()))
    log.info("audit", action=entry.action, actor=entry.actor, tenant_id=entry.tenant_id, outcome=entry.outcome)


AUDIT_COLUMNS = ("id", "at", "tenant_id", "actor", "action", "target", "outcome", "ip", "detail")


def recent_entries(
    engine: Engine, scope: TenantScope, limit: int = 200, before_id: int | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    """The newest entries the scope may see."""
    query = select(*(audit_log.c[name] for name in AUDIT_COLUMNS)).order_by(audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    if action:
        query = query.where(audit_log.c.action == action)
    with scoped_sync(engine, scope) as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
