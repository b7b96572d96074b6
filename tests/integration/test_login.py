"""Logging in to the dashboard: embedded users (argon2 passwords, throttling and lockout, CSRF, logout, expiry) and
an external OpenID Connect provider (a real one, mock-oauth2-server from Maven Central): bearer JWTs verified
against its JWKS, through a key rotation, and the authorization-code sign-in in Chromium."""

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.async_api import async_playwright, expect

from dashboard.api import create_api
from dashboard.sessions import end_sessions_of
from dashboard.users import UserDirectory
from identity.audit import recent_entries
from kernel.database import EVERY_TENANT, make_engine
from kernel.settings import Settings
from schemas.access import Role
from tests.identities import PASSWORD, bearer, create_tenant, create_user, log_in, login_form_token
from tests.integration.conftest import DASHBOARD_READY, start_service
from tests.integration.isolated import isolated_read_model
from tests.oidc_provider import CLIENT_ID, Provider, oidc_provider, signing_key
from zixly.bench.dashboard_pages import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def read_model(stack: Settings) -> Iterator[Settings]:
    with isolated_read_model(stack) as settings:
        create_tenant(settings, "acme")
        yield settings.replaced(login_max_failures=3)


@pytest.fixture(scope="module")
def provider(read_model: Settings) -> Iterator[Provider]:
    with oidc_provider(read_model) as running:
        yield running


def with_oidc(settings: Settings, provider: Provider) -> Settings:
    from pydantic import SecretStr

    return settings.replaced(
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=SecretStr(provider.settings_env()["ZIXLY_OIDC_CLIENT_SECRET"]),
    )


async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard") as client,
    ):
        yield client


@pytest.fixture
async def client(read_model: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for each in client_of(read_model):
        yield each


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": login_form_token(page.text)}
    )


def a_user(settings: Settings, role: Role = Role.VIEWER) -> str:
    return create_user(settings, f"{uuid.uuid4().hex[:8]}@acme.test", role, "acme")


# -- embedded users ------------------------------------------------------------------------------------------------


async def test_a_right_password_opens_a_session_with_strict_cookies(
    client: httpx.AsyncClient, read_model: Settings
) -> None:
    email = a_user(read_model)
    response = await attempt(client, email, PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/")
    cookies = response.headers.get_list("set-cookie")
    session = next(cookie for cookie in cookies if cookie.startswith("zixly_session="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session
    assert (await client.get("/api/pipelines/jobs")).status_code == 200


async def test_a_wrong_password_is_refused_locked_after_three_and_audited(
    client: httpx.AsyncClient, read_model: Settings
) -> None:
    email = a_user(read_model)
    first = await attempt(client, email, "wrong password!")
    assert first.status_code == 401
    assert "wrong e-mail or password" in first.text
    await attempt(client, email, "wrong password!")
    third = await attempt(client, email, "wrong password!")
    assert third.status_code == 429
    assert "this account is locked until" in third.text
    locked = await attempt(client, email, PASSWORD)  # the right password, too soon
    assert locked.status_code == 429
    assert (await client.get("/api/pipelines/jobs")).status_code == 401
    engine = make_engine(read_model, pool_size=1)
    try:
        denied = recent_entries(engine, EVERY_TENANT, 20, action="login")
    finally:
        engine.dispose()
    assert [entry["outcome"] for entry in denied if entry["target"] == email][:4] == ["denied"] * 4


async def test_an_unknown_address_gets_the_same_answers_as_a_known_one(client: httpx.AsyncClient) -> None:
    nobody = f"{uuid.uuid4().hex[:8]}@nowhere.test"
    answers = [await attempt(client, nobody, "whatever it is") for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert "this account is locked until" in answers[-1].text


async def test_a_login_form_without_its_csrf_token_or_from_another_site_is_refused(
    client: httpx.AsyncClient, read_model: Settings
) -> None:
    email = a_user(read_model)
    forged = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": "made-up"})
    assert forged.status_code == 403
    missing = await client.post("/login", data={"email": email, "password": PASSWORD})
    assert missing.status_code == 403
    page = await client.get("/login")
    elsewhere = await client.post(
        "/login",
        headers={"Origin": "https://evil.example"},
        data={"email": email, "password": PASSWORD, "csrf_token": login_form_token(page.text)},
    )
    assert elsewhere.status_code == 403
    assert (await client.get("/api/pipelines/jobs")).status_code == 401


async def test_logout_needs_the_sessions_token_and_ends_the_session(
    client: httpx.AsyncClient, read_model: Settings
) -> None:
    await log_in(client, a_user(read_model))
    refused = await client.post("/logout", data={"csrf_token": "not it"})
    assert refused.status_code == 403
    assert (await client.get("/api/pipelines/jobs")).status_code == 200
    stolen = client.cookies["zixly_session"]
    logged_out = await client.post("/logout", data={"csrf_token": client.cookies["_csrf_token"]})
    assert (logged_out.status_code, logged_out.headers["location"]) == (303, "/login")
    client.cookies.set("zixly_session", stolen)  # as a thief who copied the cookie before the logout would
    assert (await client.get("/api/pipelines/jobs")).status_code == 401


async def test_a_session_ends_when_idle_too_long(read_model: Settings) -> None:
    email = a_user(read_model)
    async for client in client_of(read_model.replaced(session_idle_minutes=1.5 / 60)):
        await log_in(client, email)
        assert (await client.get("/api/pipelines/jobs")).status_code == 200
        await asyncio.sleep(2.5)
        assert (await client.get("/api/pipelines/jobs")).status_code == 401


async def test_disabling_a_user_ends_their_sessions_and_their_logins(
    client: httpx.AsyncClient, read_model: Settings
) -> None:
    email = a_user(read_model)
    await log_in(client, email)
    engine = make_engine(read_model, pool_size=1)
    try:
        user = UserDirectory(engine).set_disabled(email, True)
        assert end_sessions_of(engine, user.id) == 1
    finally:
        engine.dispose()
    assert (await client.get("/api/pipelines/jobs")).status_code == 401
    assert (await attempt(client, email, PASSWORD)).status_code == 401


def test_cookies_are_secure_in_production(read_model: Settings) -> None:
    assert read_model.replaced(env="production").secure_cookies
    assert not read_model.secure_cookies


# -- an OpenID Connect provider ------------------------------------------------------------------------------------


@pytest.fixture
async def oidc_client(read_model: Settings, provider: Provider) -> AsyncIterator[httpx.AsyncClient]:
    async for each in client_of(with_oidc(read_model, provider)):
        yield each


async def test_a_providers_jwt_is_a_bearer_credential_of_its_tenant_and_role(
    oidc_client: httpx.AsyncClient, provider: Provider
) -> None:
    response = await oidc_client.get("/api/pipelines/jobs", headers=bearer(provider.token("good")))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("scope", "reason"), [("expired", "expired"), ("foreign", "audience")])
async def test_an_expired_or_foreign_jwt_is_401_with_the_reason(
    oidc_client: httpx.AsyncClient, provider: Provider, scope: str, reason: str
) -> None:
    response = await oidc_client.get("/api/pipelines/jobs", headers=bearer(provider.token(scope)))
    assert response.status_code == 401
    assert reason in response.json()["message"].lower()


async def test_a_forged_jwt_is_401(oidc_client: httpx.AsyncClient, provider: Provider) -> None:
    genuine = jwt.decode(provider.token("good"), options={"verify_signature": False})
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for kid in ("zixly", "attacker"):
        forged = jwt.encode(genuine | {"zixly_role": "platform-admin"}, forger, algorithm="RS256", headers={"kid": kid})
        response = await oidc_client.get("/api/pipelines/jobs", headers=bearer(forged))
        assert response.status_code == 401, kid
    unsigned = jwt.encode(genuine, None, algorithm="none")
    assert (await oidc_client.get("/api/pipelines/jobs", headers=bearer(unsigned))).status_code == 401
    # The classic confusion: HS256 with the provider's public key (which anyone can fetch) as the secret.
    public_pem = (
        jwt.PyJWKClient(f"{provider.issuer}/jwks")
        .get_signing_keys()[0]
        .key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert (await oidc_client.get("/api/pipelines/jobs", headers=bearer(hs256(genuine, public_pem)))).status_code == 401


def hs256(claims: dict[str, Any], secret: bytes) -> str:
    """A JWT signed by hand (PyJWT rightly refuses to use a public key as an HMAC secret)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{part(json.dumps({'alg': 'HS256', 'kid': 'zixly'}).encode())}.{part(json.dumps(claims).encode())}"
    return f"{signing_input}.{part(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


async def test_a_provider_that_rotates_its_key_is_followed(read_model: Settings) -> None:
    with ExitStack() as providers:
        before = providers.enter_context(oidc_provider(read_model, key=signing_key()))
        port = before.port
        async for client in client_of(with_oidc(read_model, before)):
            old_token = before.token("good")
            assert (await client.get("/api/pipelines/jobs", headers=bearer(old_token))).status_code == 200
            providers.close()  # the provider restarts with a new key under the same key id
            after = providers.enter_context(oidc_provider(read_model, port=port, key=signing_key()))
            rotated = await client.get("/api/pipelines/jobs", headers=bearer(after.token("good")))
            assert rotated.status_code == 200, rotated.text
            assert (await client.get("/api/pipelines/jobs", headers=bearer(old_token))).status_code == 401


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is installed by `make test`")
async def test_signing_in_through_the_provider_in_chromium_opens_a_session_of_the_claimed_tenant_and_role(
    read_model: Settings, provider: Provider
) -> None:
    env = provider.settings_env() | {
        "DATABASE_URL": read_model.database,
        "ZIXLY_DASHBOARD_PORT": "0",
        "ZIXLY_JOB_EVENTS_TOPIC": read_model.job_events_topic,
    }
    dashboard = start_service(read_model, "dashboard-oidc", ["dashboard"], DASHBOARD_READY, env)
    port = dashboard.port
    email = f"sso-{uuid.uuid4().hex[:6]}@acme.test"
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/jobs")
            await page.click("#oidc-login")
            await page.fill("input[name=username]", email)
            await page.fill(
                "textarea[name=claims]", f'{{"email": "{email}", "zixly_tenant": "acme", "zixly_role": "operator"}}'
            )
            await page.click("input[type=submit]")
            await expect(page.locator("#role-badge")).to_have_text("operator · acme")
            await expect(page.locator("#signed-in-as")).to_have_text(email)
            assert page.url.endswith("/jobs")
            await page.screenshot(path=read_model.home / "screenshots" / "oidc-signed-in.png")
            await browser.close()
    finally:
        dashboard.stop()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is installed by `make test`")
async def test_a_wrong_password_in_chromium_says_so_and_locks_the_account(read_model: Settings) -> None:
    env = {
        "DATABASE_URL": read_model.database,
        "ZIXLY_DASHBOARD_PORT": "0",
        "ZIXLY_LOGIN_MAX_FAILURES": "2",
        "ZIXLY_JOB_EVENTS_TOPIC": read_model.job_events_topic,
    }
    dashboard = start_service(read_model, "dashboard-login", ["dashboard"], DASHBOARD_READY, env)
    port = dashboard.port
    email = a_user(read_model)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = await browser.new_page()
            for expected in ("wrong e-mail or password", "this account is locked until"):
                await page.goto(f"http://127.0.0.1:{port}/login")
                await page.fill("#email", email)
                await page.fill("#password", "not the password")
                await page.click("#login-submit")
                await expect(page.locator("#login-error")).to_contain_text(expected)
            await page.screenshot(path=read_model.home / "screenshots" / "login-locked.png")
            await browser.close()
    finally:
        dashboard.stop()
