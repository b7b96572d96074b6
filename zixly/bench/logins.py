"""The benchmarks read the dashboard as a platform admin of their own database, logged in as a person would."""

import re
import secrets

import httpx
import psycopg
from playwright.async_api import BrowserContext

from dashboard.users import UserDirectory
from kernel.database import make_engine
from kernel.settings import Settings
from schemas.access import Role

BENCH_ADMIN = "bench-admin@zixly.localhost"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def bench_admin(settings: Settings) -> tuple[str, str]:
    """The benchmark's platform admin, with a new password, and that password."""
    password = secrets.token_urlsafe(16)
    engine = make_engine(settings, pool_size=1)
    try:
        UserDirectory(engine).create_or_reset(BENCH_ADMIN, Role.PLATFORM_ADMIN, None, password)
    finally:
        engine.dispose()
    return BENCH_ADMIN, password


def bench_viewer(settings: Settings, tenant_id: str) -> tuple[str, str]:
    """A viewer of one tenant (registered for the occasion), with a new password, and that password."""
    password = secrets.token_urlsafe(16)
    email = f"bench-viewer@{tenant_id}.localhost"
    with psycopg.connect(settings.database, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO tenants (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (tenant_id, tenant_id)
        )
    engine = make_engine(settings, pool_size=1)
    try:
        UserDirectory(engine).create_or_reset(email, Role.VIEWER, tenant_id, password)
    finally:
        engine.dispose()
    return email, password


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    """Logs the client in through the login form; the headers its state-changing requests must then carry."""
    page = await client.get("/login")
    found = _CSRF_FIELD.search(page.text)
    if found is None:
        raise RuntimeError(f"no login form at {client.base_url}/login: {page.status_code}")
    answer = await client.post("/login", data={"email": email, "password": password, "csrf_token": found.group(1)})
    if answer.status_code != 303:
        raise RuntimeError(f"the login was refused: {answer.status_code}")
    return {"X-CSRFToken": client.cookies["_csrf_token"]}


async def log_in_browser(context: BrowserContext, url: str, email: str, password: str) -> None:
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_selector("#role-badge")
    await page.close()
