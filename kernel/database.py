"""Postgres access: SQLAlchemy engines for queries, plain psycopg for bulk writes, and tenant scopes.

The services that face users (receiver, dashboard) log in with roles of their own and read tenant data through
row-level security: every transaction first says whose rows it may see (``TenantScope``). A transaction that says
nothing sees no tenant's rows at all, so a forgotten scope fails closed.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kernel.settings import Settings

Service = Literal["receiver", "dashboard"]
T = TypeVar("T")


@dataclass(frozen=True)
class TenantScope:
    """Whose rows a transaction may see: one tenant's, or with ``all_tenants`` everyone's (platform admins, and
    the server-side steps that must find a credential before they know its tenant)."""

    tenant_id: str | None
    all_tenants: bool = False

    @classmethod
    def of(cls, tenant_id: str) -> "TenantScope":
        return cls(tenant_id)

    def parameters(self) -> dict[str, str]:
        return {"tenant": self.tenant_id or "", "all": "on" if self.all_tenants else "off"}


EVERY_TENANT = TenantScope(None, all_tenants=True)
# Transaction-local (the third argument): a pooled connection carries nothing over to its next user.
SET_SCOPE = text("SELECT set_config('zixly.tenant_id', :tenant, true), set_config('zixly.all_tenants', :all, true)")
SET_SCOPE_SQL = "SELECT set_config('zixly.tenant_id', %s, true), set_config('zixly.all_tenants', %s, true)"


def make_async_engine(settings: Settings, pool_size: int = 5, service: Service | None = None) -> AsyncEngine:
    """The owner's engine, or with ``service`` that service's own login."""
    url = settings.service_sqlalchemy_url(service) if service else settings.sqlalchemy_url
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_engine(settings: Settings, pool_size: int = 4, service: Service | None = None) -> Engine:
    url = settings.service_sqlalchemy_url(service) if service else settings.sqlalchemy_url
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@asynccontextmanager
async def scoped(engine: AsyncEngine, scope: TenantScope) -> AsyncIterator[AsyncConnection]:
    """A transaction that sees ``scope``'s rows; committed when the block ends without an error."""
    async with engine.begin() as connection:
        await connection.execute(SET_SCOPE, scope.parameters())
        yield connection


@contextmanager
def scoped_sync(engine: Engine, scope: TenantScope) -> Iterator[Connection]:
    with engine.begin() as connection:
        connection.execute(SET_SCOPE, scope.parameters())
        yield connection


def run_with_engine(
    settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]], service: Service | None = None
) -> T:
    """Runs async database ``work`` from synchronous code (a command, a Dash callback) on an engine of its own."""

    async def run() -> T:
        engine = make_async_engine(settings, pool_size=1, service=service)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())
