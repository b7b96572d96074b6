"""Tenants and their webhook secrets in Postgres: created and rotated by operators, read by receivers."""

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.read_model import tenant_webhook_secrets, tenants


@dataclass(frozen=True)
class TenantSecrets:
    tenant_id: str
    secrets: tuple[str, ...]
    """The secrets that may sign its webhooks now, newest first."""


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class TenantDirectory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def secrets_of(self, tenant_id: str) -> TenantSecrets | None:
        """None for an unknown tenant."""
        now = datetime.now(UTC)
        async with self._engine.connect() as connection:
            known = (await connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first()
            if known is None:
                return None
            rows = await connection.execute(
                select(tenant_webhook_secrets.c.secret)
                .where(
                    tenant_webhook_secrets.c.tenant_id == tenant_id,
                    or_(tenant_webhook_secrets.c.expires_at.is_(None), tenant_webhook_secrets.c.expires_at > now),
                )
                .order_by(tenant_webhook_secrets.c.created_at.desc())
            )
            return TenantSecrets(tenant_id, tuple(secret for (secret,) in rows))

    async def create(self, tenant_id: str, name: str) -> str:
        """Creates the tenant with a first secret, which is returned (and shown once)."""
        secret = new_secret()
        async with self._engine.begin() as connection:
            created = await connection.execute(
                insert(tenants).values(id=tenant_id, name=name).on_conflict_do_nothing().returning(tenants.c.id)
            )
            if created.first() is None:
                raise ValueError(f"tenant {tenant_id!r} exists already; rotate its secret instead")
            await connection.execute(
                insert(tenant_webhook_secrets).values(id=uuid.uuid4(), tenant_id=tenant_id, secret=secret)
            )
        return secret

    async def rotate(self, tenant_id: str, overlap: timedelta) -> str:
        """A new secret; the current ones keep working for ``overlap``, so senders can switch without a gap."""
        secret = new_secret()
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            if (await connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is None:
                raise ValueError(f"unknown tenant {tenant_id!r}")
            await connection.execute(
                update(tenant_webhook_secrets)
                .where(
                    tenant_webhook_secrets.c.tenant_id == tenant_id,
                    or_(tenant_webhook_secrets.c.expires_at.is_(None),
                        tenant_webhook_secrets.c.expires_at > now + overlap),
                )
                .values(expires_at=now + overlap)
            )  # fmt: skip
            await connection.execute(
                insert(tenant_webhook_secrets).values(id=uuid.uuid4(), tenant_id=tenant_id, secret=secret)
            )
        return secret

    async def set_notifications(self, tenant_id: str, slack: str | None, emails: str | None, on: str) -> None:
        async with self._engine.begin() as connection:
            changed = await connection.execute(
                update(tenants).where(tenants.c.id == tenant_id)
                .values(notify_slack_webhook_url=slack, notify_emails=emails, notify_on=on)
            )  # fmt: skip
            if changed.rowcount == 0:
                raise ValueError(f"unknown tenant {tenant_id!r}")

    async def list(self) -> list[tuple[str, str, int]]:
        """(id, name, active secrets) of every tenant."""
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(tenants.c.id, tenants.c.name).order_by(tenants.c.id))).all()
        out = []
        for tenant_id, name in rows:
            active = await self.secrets_of(tenant_id)
            out.append((tenant_id, name, len(active.secrets) if active else 0))
        return out
