"""Tenants and their webhook secrets in Postgres: created and rotated by operators, read by receivers.

Secrets are sealed (kernel/secret_box.py) before they are stored and opened only in the process that checks a
signature: a copy of the database holds no secret a sender could be impersonated with.
"""

import base64
import dataclasses
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import EVERY_TENANT, TenantScope, scoped
from kernel.secret_box import SecretBox
from schemas.operational_tables import tenant_webhook_secrets, tenants


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's own limits; None where the deployment's default (ZIXLY_TENANT_*) applies."""

    rate_per_second: float | None = None
    rate_burst: int | None = None
    max_in_flight: int | None = None
    max_sweep_backtests: int | None = None


def _limit_columns() -> list[Column[Any]]:
    return [tenants.c[field.name] for field in dataclasses.fields(TenantLimits)]


def limit_text(value: float) -> str:
    """A limit as people read it: 2,000,000 and 0.5, not 2e+06."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,g}"


@dataclass(frozen=True)
class TenantSecrets:
    tenant_id: str
    secrets: tuple[str, ...]
    """The secrets that may sign its webhooks now, newest first."""
    limits: TenantLimits = TenantLimits()


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_context(tenant_id: str) -> str:
    return f"tenant_webhook_secrets:{tenant_id}"


def slack_context(tenant_id: str) -> str:
    return f"tenants.notify_slack_webhook_url:{tenant_id}"


class TenantDirectory:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def secrets_of(self, tenant_id: str) -> TenantSecrets | None:
        """None for an unknown tenant."""
        now = datetime.now(UTC)
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            known = (
                await connection.execute(select(tenants.c.id, *_limit_columns()).where(tenants.c.id == tenant_id))
            ).first()
            if known is None:
                return None
            rows = await connection.execute(
                select(tenant_webhook_secrets.c.secret_sealed)
                .where(
                    tenant_webhook_secrets.c.tenant_id == tenant_id,
                    or_(tenant_webhook_secrets.c.expires_at.is_(None), tenant_webhook_secrets.c.expires_at > now),
                )
                .order_by(tenant_webhook_secrets.c.created_at.desc())
            )
            sealed = [value for (value,) in rows]
        limits = TenantLimits(*known[1:])
        opened = tuple(self._box.open(value, secret_context(tenant_id)) for value in sealed)
        return TenantSecrets(tenant_id, opened, limits)

    async def limits(self, tenant_id: str) -> TenantLimits:
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            row = (await connection.execute(select(*_limit_columns()).where(tenants.c.id == tenant_id))).first()
        if row is None:
            raise ValueError(f"unknown tenant {tenant_id!r}")
        return TenantLimits(*row)

    async def set_limits(self, tenant_id: str, limits: TenantLimits) -> None:
        """Receivers apply them once their cached copy of the tenant expires (seconds)."""
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            changed = await connection.execute(
                update(tenants).where(tenants.c.id == tenant_id).values(**dataclasses.asdict(limits))
            )
            if changed.rowcount == 0:
                raise ValueError(f"unknown tenant {tenant_id!r}")

    async def exists(self, tenant_id: str) -> bool:
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            return (await connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is not None

    async def create(self, tenant_id: str, name: str) -> str:
        """Creates the tenant with a first secret, which is returned (and shown once)."""
        secret = new_secret()
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            created = await connection.execute(
                insert(tenants).values(id=tenant_id, name=name).on_conflict_do_nothing().returning(tenants.c.id)
            )
            if created.first() is None:
                raise ValueError(f"tenant {tenant_id!r} exists already; rotate its secret instead")
            await connection.execute(
                insert(tenant_webhook_secrets).values(
                    id=uuid.uuid4(),
                    tenant_id=tenant_id,
                    secret_sealed=self._box.seal(secret, secret_context(tenant_id)),
                )
            )
        return secret

    async def rotate(self, tenant_id: str, overlap: timedelta) -> str:
        """A new secret; the current ones keep working for ``overlap``, so senders can switch without a gap."""
        secret = new_secret()
        now = datetime.now(UTC)
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            if (await connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is None:
                raise ValueError(f"unknown tenant {tenant_id!r}")
            await connection.execute(
                update(tenant_webhook_secrets)
                .where(
                    tenant_webhook_secrets.c.tenant_id == tenant_id,
                    or_(
                        tenant_webhook_secrets.c.expires_at.is_(None),
                        tenant_webhook_secrets.c.expires_at > now + overlap,
                    ),
                )
                .values(expires_at=now + overlap)
            )
            await connection.execute(
                insert(tenant_webhook_secrets).values(
                    id=uuid.uuid4(),
                    tenant_id=tenant_id,
                    secret_sealed=self._box.seal(secret, secret_context(tenant_id)),
                )
            )
        return secret

    async def set_notifications(self, tenant_id: str, slack: str | None, emails: str | None, on: str) -> None:
        sealed_slack = self._box.seal(slack, slack_context(tenant_id)) if slack else None
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            changed = await connection.execute(
                update(tenants)
                .where(tenants.c.id == tenant_id)
                .values(notify_slack_webhook_url=sealed_slack, notify_emails=emails, notify_on=on)
            )
            if changed.rowcount == 0:
                raise ValueError(f"unknown tenant {tenant_id!r}")

    async def list(self) -> list[tuple[str, str, int, TenantLimits]]:
        """(id, name, active secrets, own limits) of every tenant."""
        now = datetime.now(UTC)
        active = func.count(tenant_webhook_secrets.c.id).filter(
            or_(tenant_webhook_secrets.c.expires_at.is_(None), tenant_webhook_secrets.c.expires_at > now)
        )
        query = (
            select(tenants.c.id, tenants.c.name, active, *_limit_columns())
            .select_from(tenants.outerjoin(tenant_webhook_secrets, tenant_webhook_secrets.c.tenant_id == tenants.c.id))
            .group_by(tenants.c.id)
            .order_by(tenants.c.id)
        )
        async with scoped(self._engine, EVERY_TENANT) as connection:
            rows = await connection.execute(query)
            return [(tenant_id, name, int(count), TenantLimits(*limits)) for tenant_id, name, count, *limits in rows]
