"""The login page, logout, and sign-in through the OIDC provider: how a person gets a dashboard session."""

import asyncio
import html
import secrets
import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError

from dashboard.authentication import Authenticator
from dashboard.login_throttle import AccountThrottle, ClientThrottle
from dashboard.oidc import OidcProvider, OidcRefused, PendingSignIn
from dashboard.sessions import CSRF_COOKIE, SESSION_COOKIE, Session
from dashboard.users import UserDirectory
from identity.audit import AuditEntry, record
from kernel.logging import get_logger
from kernel.settings import Settings
from schemas.access import Principal

router = APIRouter(include_in_schema=False)
log = get_logger(__name__)
LOGIN_CSRF_COOKIE = "zixly_login_csrf"
OIDC_COOKIE = "zixly_oidc"
_OIDC_SECONDS = 600


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _safe_next(target: str | None) -> str:
    """Only a path of this site: an absolute or protocol-relative address would make the login an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page(settings: Settings, csrf: str, next_path: str, message: str | None = None, status: int = 200) -> HTMLResponse:
    oidc = ""
    if settings.oidc_issuer:
        oidc = (
            f'<p class="or">or</p><a class="button secondary" id="oidc-login" '
            f'href="/auth/oidc/login?next={html.escape(next_path, quote=True)}">Sign in with single sign-on</a>'
        )
    notice = f'<p class="error" id="login-error" role="alert">{html.escape(message)}</p>' if message else ""
    mode = '<p class="mode">development mode</p>' if settings.development else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · Zixly Pipeline</title>
<link rel="stylesheet" href="/login.css"></head><body><main class="login">
<h1>Zixly Pipeline</h1>{mode}{notice}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{html.escape(csrf, quote=True)}">
<input type="hidden" name="next" value="{html.escape(next_path, quote=True)}">
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login-submit">Log in</button></form>{oidc}</main></body></html>"""
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        max_age=3600,
        path="/login",
    )
    return response


@router.get("/login.css")
def login_css() -> Response:
    css = (
        "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}"
        ".login{max-width:360px;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;"
        "box-shadow:0 1px 4px #0002}label{display:block;margin-top:1rem}input{width:100%;padding:.5rem;"
        "box-sizing:border-box}button,.button{display:block;width:100%;margin-top:1.5rem;padding:.6rem;"
        "background:#1f6feb;color:#fff;border:0;border-radius:4px;text-align:center;text-decoration:none}"
        ".secondary{background:#57606a}.error{color:#b42318}.mode{color:#9a6700}.or{text-align:center}"
    )
    return Response(css, media_type="text/css")


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    # The same token for every login page of this browser: a second tab (or a stray request redirected here) must
    # not invalidate the form of the first.
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    return _page(_settings(request), csrf, _safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    settings = _settings(request)
    next_path = _safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _page(
            settings,
            secrets.token_urlsafe(24),
            next_path,
            "the form had expired or did not come from this page; please try again",
            403,
        )
    state = request.app.state
    client_throttle: ClientThrottle = state.client_throttle
    wait = client_throttle.retry_after(_client(request))
    if wait is not None:
        return _page(
            settings, csrf_token, next_path, f"too many login attempts from your address; wait {int(wait) + 1} s", 429
        )
    throttle: AccountThrottle = state.account_throttle
    users: UserDirectory = state.users
    try:
        locked = await asyncio.to_thread(throttle.locked, email)
        user = None if locked else await asyncio.to_thread(users.verify_password, email, password)
        if user is None:
            locked = locked or await asyncio.to_thread(throttle.failed, email)
            await _audit(
                request,
                AuditEntry(
                    f"user:{email}",
                    "login",
                    None,
                    email,
                    "denied",
                    _client(request),
                    {"reason": "locked" if locked else "wrong e-mail or password"},
                ),
            )
            if locked:
                return _page(settings, csrf_token, next_path, locked.message(), 429)
            return _page(settings, csrf_token, next_path, "wrong e-mail or password", 401)
        await asyncio.to_thread(throttle.succeeded, email)
    except SQLAlchemyError as exc:
        log.warning("login store unavailable", error=repr(exc)[:300])
        return _page(settings, csrf_token, next_path, "logins are unavailable right now; try again shortly", 503)
    principal = user.principal()
    await _audit(request, AuditEntry(principal.actor, "login", user.tenant_id, email, "ok", _client(request)))
    return await _open_session(request, user.id, principal, next_path)


async def _open_session(request: Request, user_id: uuid.UUID, principal: Principal, next_path: str) -> Response:
    settings = _settings(request)
    authenticator: Authenticator = request.app.state.authenticator
    session_id, csrf = await authenticator.sessions.open(
        user_id,
        principal,
        _client(request),
        request.headers.get("user-agent"),
    )
    response = RedirectResponse(next_path, status_code=303)
    lifetime = int(timedelta(hours=settings.session_max_hours).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        authenticator.signer.sign(session_id),
        max_age=lifetime,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
    )
    # Readable by the page's scripts on purpose: Dash sends it back as the X-CSRFToken header.
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=lifetime, httponly=False, secure=settings.secure_cookies, samesite="strict"
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    session: Session | None = request.state.session if hasattr(request.state, "session") else None
    response = RedirectResponse("/login", status_code=303)
    if session is None:
        return response
    if not secrets.compare_digest(session.csrf_token, csrf_token):
        return Response("the logout form lacks this session's CSRF token", status_code=403)
    authenticator: Authenticator = request.app.state.authenticator
    signed = request.cookies.get(SESSION_COOKIE, "")
    session_id = authenticator.signer.unsign(signed)
    if session_id:
        await authenticator.sessions.close(session_id)
    principal = session.principal
    await _audit(
        request, AuditEntry(principal.actor, "logout", principal.tenant_id, principal.subject, "ok", _client(request))
    )
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


def _oidc_serializer(settings: Settings) -> URLSafeTimedSerializer:
    keys = [key.strip() for key in settings.session_keys.get_secret_value().split(",") if key.strip()]
    return URLSafeTimedSerializer(list(reversed(keys)), salt="zixly-oidc")


def _redirect_uri(settings: Settings) -> str:
    return f"{settings.dashboard_base_url.rstrip('/')}/auth/oidc/callback"


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, next: str | None = None) -> Response:
    settings = _settings(request)
    provider: OidcProvider | None = request.app.state.authenticator.oidc
    if provider is None:
        return Response("single sign-on is not configured", status_code=404)
    pending = PendingSignIn.start(_safe_next(next))
    try:
        location = await provider.authorization_url(pending, _redirect_uri(settings))
    except Exception as exc:  # the provider is down or misconfigured: say so on the page, not as a 500
        log.warning("oidc provider unavailable", error=repr(exc)[:300])
        return _page(settings, secrets.token_urlsafe(24), pending.next_path, "single sign-on is unavailable", 503)
    response = RedirectResponse(location, status_code=303)
    # Lax: the provider sends the browser back with a top-level GET, which must carry this cookie.
    response.set_cookie(
        OIDC_COOKIE,
        _oidc_serializer(settings).dumps(pending.__dict__),
        max_age=_OIDC_SECONDS,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/auth/oidc",
    )
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(
    request: Request, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    settings = _settings(request)
    provider: OidcProvider | None = request.app.state.authenticator.oidc
    if provider is None:
        return Response("single sign-on is not configured", status_code=404)
    try:
        pending = PendingSignIn(
            **_oidc_serializer(settings).loads(request.cookies.get(OIDC_COOKIE, ""), max_age=_OIDC_SECONDS)
        )
    except (BadSignature, TypeError):
        return _page(
            settings,
            secrets.token_urlsafe(24),
            "/",
            "the sign-in took too long or was not started here; please try again",
            400,
        )
    if error or not code or not state or not secrets.compare_digest(state, pending.state):
        reason = error or "the provider's answer does not belong to this sign-in"
        return _page(settings, secrets.token_urlsafe(24), pending.next_path, f"single sign-on failed: {reason}", 400)
    try:
        identity = await provider.sign_in(code, pending, _redirect_uri(settings))
        users: UserDirectory = request.app.state.users
        principal = identity.principal
        user = await asyncio.to_thread(
            users.upsert_external, identity.email, identity.subject, principal.role, principal.tenant_id
        )
    except (OidcRefused, ValueError, SQLAlchemyError) as exc:
        reason = "the token names an unknown tenant" if isinstance(exc, SQLAlchemyError) else str(exc)
        await _audit(
            request,
            AuditEntry(
                "oidc:unknown", "login", None, provider.issuer, "denied", _client(request), {"reason": reason[:300]}
            ),
        )
        return _page(settings, secrets.token_urlsafe(24), pending.next_path, f"single sign-on refused: {reason}", 403)
    await _audit(
        request,
        AuditEntry(
            user.principal().actor,
            "login",
            user.tenant_id,
            user.email,
            "ok",
            _client(request),
            {"provider": provider.issuer},
        ),
    )
    response = await _open_session(request, user.id, user.principal(), pending.next_path)
    response.delete_cookie(OIDC_COOKIE, path="/auth/oidc")
    return response


async def _audit(request: Request, entry: AuditEntry) -> None:
    try:
        await record(request.app.state.engine, entry)
    except SQLAlchemyError as exc:  # the login's answer does not wait on the audit log; the log line keeps it
        log.error("audit entry not written", error=repr(exc)[:300], action=entry.action, actor=entry.actor)
