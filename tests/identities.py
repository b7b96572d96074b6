"""Tenants, users and tokens for tests, made the way operators make them (the directories `zixly` uses), and a
login through the dashboard's own login form."""

import re
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dashboard.users import UserDirectory
from identity.api_tokens import ApiTokens
from identity.tenant_secrets import TenantSecretStore
from identity.tenants import TenantDirectory, TenantLimits
from kernel.database import make_engine, run_with_engine
from kernel.secret_box import SecretBox
from kernel.settings import Settings
from schemas.access import Role

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Tenant:
    id: str
    secret: str


def create_tenant(settings: Settings, tenant_id: str) -> Tenant:
    async def work(engine: AsyncEngine) -> str:
        box = SecretBox.from_text(settings.master_keys.get_secret_value())
        return await TenantDirectory(engine, box).create(tenant_id, tenant_id)

    return Tenant(tenant_id, run_with_engine(settings, work))


def set_limits(settings: Settings, tenant_id: str, limits: TenantLimits) -> None:
    async def work(engine: AsyncEngine) -> None:
        box = SecretBox.from_text(settings.master_keys.get_secret_value())
        await TenantDirectory(engine, box).set_limits(tenant_id, limits)

    run_with_engine(settings, work)


def set_tenant_secret(settings: Settings, tenant_id: str, name: str, value: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        box = SecretBox.from_text(settings.master_keys.get_secret_value())
        await TenantSecretStore(engine, box).set(tenant_id, name, value, "test")

    run_with_engine(settings, work)


def create_user(settings: Settings, email: str, role: Role, tenant_id: str | None, password: str = PASSWORD) -> str:
    engine = make_engine(settings, pool_size=1)
    try:
        UserDirectory(engine).create(email, role, tenant_id, password)
    finally:
        engine.dispose()
    return email


def create_token(
    settings: Settings, tenant_id: str, role: Role = Role.VIEWER, expires_in: timedelta | None = None
) -> str:
    async def work(engine: AsyncEngine) -> str:
        return (await ApiTokens(engine).create(tenant_id, f"test {role}", role, "test", expires_in))[1]

    return run_with_engine(settings, work)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def login_form_token(page: str) -> str:
    found = _CSRF_FIELD.search(page)
    assert found, page[:500]
    return found.group(1)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Logs the client in through the login form; its cookies then carry the session."""
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": login_form_token(page.text), "next": "/"}
    )
    return response


def log_in_sync(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": login_form_token(page.text), "next": "/"}
    )
