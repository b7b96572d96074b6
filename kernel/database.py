"""Postgres access: SQLAlchemy engines for queries, plain psycopg for bulk writes, and tenant scopes.

The services that face users (receiver, dashboard) log in with roles of their own and read tenant data through
row-level security: every transaction first says whose rows it may see (``TenantScope``). A tenant's scope sets
``zixly.tenant_id``; every tenant's scope (a platform admin, or finding a credential before its tenant is known)
takes the service's ``…_all`` role for the transaction, whose policy lets every row through. A transaction that
says nothing sees no tenant's rows at all, so a forgotten scope fails closed.

Why a role and not a second setting: a policy that reads "this tenant, or every tenant if a setting says so" stays
a security barrier for every query, and Postgres then cannot use an index for a condition it does not trust (the
text search's ILIKE): the platform admin's search became a scan of a million rows. The ``…_all`` role's policy is
the constant ``true``, which the planner drops.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kernel.settings import DatabaseService, Settings

Service = DatabaseService
T = TypeVar("T")
# The role a service takes for a transaction that sees every tenant (migration 0009).
# The worker has none: a job always belongs to one tenant.
EVERY_TENANT_ROLES: dict[Service, str] = {"receiver": "zixly_receiver_all", "dashboard": "zixly_dashboard_all"}
_SERVICE_OPTION = "zixly_service"


@dataclass(frozen=True)
class TenantScope:
    """Whose rows a transaction may see: one tenant's, or with ``all_tenants`` everyone's (platform admins, and
    the server-side steps that must find a credential before they know its tenant)."""

    tenant_id: str | None
    all_tenants: bool = False

    @classmethod
    def of(cls, tenant_id: str) -> "TenantScope":
        return cls(tenant_id)


EVERY_TENANT = TenantScope(None, all_tenants=True)


def scope_sql(scope: TenantScope, service: Service | None) -> tuple[str, dict[str, str]] | None:
    """The statement that opens ``scope`` in a transaction of ``service``'s login (None: the owner's, which sees
    every row without one). Transaction-local either way: a pooled connection carries nothing to its next user."""
    if scope.all_tenants:
        return (f"SET LOCAL ROLE {EVERY_TENANT_ROLES[service]}", {}) if service else None
    return "SELECT set_config('zixly.tenant_id', :tenant, true)", {"tenant": scope.tenant_id or ""}


def psycopg_scope_sql(scope: TenantScope, service: Service | None) -> tuple[str, tuple[str, ...]] | None:
    """``scope_sql`` for a plain psycopg connection (in a transaction: it is transaction-local)."""
    opening = scope_sql(scope, service)
    if opening is None or not opening[1]:
        return (opening[0], ()) if opening else None
    return opening[0].replace(":tenant", "%s"), (opening[1]["tenant"],)


def make_async_engine(
    settings: Settings, pool_size: int = 5, service: Service | None = None, max_overflow: int | None = None
) -> AsyncEngine:
    """The owner's engine, or with ``service`` that service's own login. Past ``pool_size`` connections it opens up
    to ``max_overflow`` more (as many again by default), each closed when given back."""
    url = settings.service_sqlalchemy_url(service) if service else settings.sqlalchemy_url
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=True,
        execution_options={_SERVICE_OPTION: service},
    )


def make_engine(settings: Settings, pool_size: int = 4, service: Service | None = None) -> Engine:
    url = settings.service_sqlalchemy_url(service) if service else settings.sqlalchemy_url
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        execution_options={_SERVICE_OPTION: service},
    )


@asynccontextmanager
async def scoped(engine: AsyncEngine, scope: TenantScope) -> AsyncIterator[AsyncConnection]:
    """A transaction that sees ``scope``'s rows; committed when the block ends without an error."""
    async with engine.begin() as connection:
        opening = scope_sql(scope, connection.sync_connection.get_execution_options().get(_SERVICE_OPTION))  # type: ignore[union-attr]
        if opening is not None:
            await connection.execute(text(opening[0]), opening[1])
        yield connection


@contextmanager
def scoped_sync(engine: Engine, scope: TenantScope) -> Iterator[Connection]:
    with engine.begin() as connection:
        opening = scope_sql(scope, connection.get_execution_options().get(_SERVICE_OPTION))
        if opening is not None:
            connection.execute(text(opening[0]), opening[1])
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
