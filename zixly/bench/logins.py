"""The benchmarks read the dashboard as a platform admin of their own database, logged in as a person would."""

import re
import secrets

import httpx
from playwright.async_api import BrowserContext
from sqlalchemy import func, select

from dashboard.users import UserDirectory
from kernel.database import EVERY_TENANT, make_engine, scoped_sync
from kernel.settings import Settings
from schemas.access import Role
from schemas.identity_tables import dashboard_users

BENCH_ADMIN = "bench-admin@zixly.localhost"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def bench_admin(settings: Settings) -> tuple[str, str]:
    """The benchmark's platform admin (created, or given a new password), and its password."""
    password = secrets.token_urlsafe(16)
    engine = make_engine(settings, pool_size=1)
    try:
        users = UserDirectory(engine)
        with scoped_sync(engine, EVERY_TENANT) as connection:
            exists = connection.execute(
                select(dashboard_users.c.id).where(func.lower(dashboard_users.c.email) == BENCH_ADMIN)
            ).first()
        if exists is None:
            users.create(BENCH_ADMIN, Role.PLATFORM_ADMIN, None, password)
        else:
            users.reset_password(BENCH_ADMIN, password)
    finally:
        engine.dispose()
    return BENCH_ADMIN, password


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
