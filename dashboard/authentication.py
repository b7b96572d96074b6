"""Who is calling the dashboard's server, decided once per request in front of the API and the Dash pages.

A caller is a session (the signed cookie of a login) or a bearer credential: an API token (``zxt_…``) or, when an
OIDC provider is configured, a JWT it issued. Requests without a caller reach only the login routes and the
health check: pages redirect to the login page, everything else answers 401. A request that changes anything on
the strength of a session cookie must also carry that session's CSRF token (Dash sends it as ``X-CSRFToken`` from
the ``_csrf_token`` cookie) and come from this site.

The caller is left in ``scope["state"]["principal"]`` for the API's routes and the Dash callbacks to authorise.
"""

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from dashboard.oidc import OidcProvider, OidcRefused
from dashboard.sessions import SESSION_COOKIE, CookieSigner, Session, SessionStore
from identity.api_tokens import ApiTokens, TokenRefused, looks_like_token
from kernel.logging import get_logger
from schemas.access import Principal

log = get_logger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/login", "/auth/oidc/login", "/auth/oidc/callback", "/api/health", "/login.css"})
# Form posts that check the CSRF token in their own body.
FORM_POSTS = frozenset({"/login", "/logout"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass
class Authenticator:
    sessions: SessionStore
    signer: CookieSigner
    tokens: ApiTokens
    oidc: OidcProvider | None

    async def bearer(self, credential: str) -> Principal:
        if looks_like_token(credential):
            return await self.tokens.authenticate(credential)
        if self.oidc is not None and credential.count(".") == 2:
            return (await self.oidc.verify(credential)).principal
        raise TokenRefused("not an API token" + (" nor a JWT of the OIDC provider" if self.oidc else ""))

    async def session(self, cookie_value: str) -> Session | None:
        session_id = self.signer.unsign(cookie_value)
        return await self.sessions.resolve(session_id) if session_id else None

    async def still_valid(self, authorization: str | None, session_cookie: str | None) -> bool:
        """Whether the credential a long request began with still holds (a stream outlives logouts otherwise)."""
        try:
            if authorization:
                await self.bearer(authorization.partition(" ")[2].strip())
                return True
            return session_cookie is not None and await self.session(session_cookie) is not None
        except (TokenRefused, OidcRefused):
            return False


def cookies_of(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is no cookie
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def same_origin(scope: Scope) -> bool:
    """True unless the browser says the request comes from another site (no Origin: not a browser's form post)."""
    origin = header(scope, b"origin")
    if origin is None or origin == "null":
        return origin is None
    host = header(scope, b"host") or ""
    return urlsplit(origin).netloc == host


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        path: str = scope["path"]
        method: str = scope["method"]
        authenticator: Authenticator = scope["app"].state.authenticator
        state = scope.setdefault("state", {})
        state["principal"] = None
        if method not in _SAFE_METHODS and not same_origin(scope):
            await _refuse(send, 403, "cross_origin", "this request comes from another site")
            return
        authorization = header(scope, b"authorization")
        if authorization is not None:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                await _refuse(send, 401, "invalid_authorization", "use Authorization: Bearer <token>")
                return
            try:
                state["principal"] = await authenticator.bearer(credential.strip())
            except (TokenRefused, OidcRefused) as refused:
                await _refuse(send, 401, "invalid_token", str(refused))
                return
            except Exception as exc:  # the credential store or the provider is unreachable: not the caller's fault
                log.warning("credentials cannot be checked", error=repr(exc)[:300])
                await _refuse(send, 503, "credentials_unavailable", "credentials cannot be checked now; retry")
                return
        else:
            cookie = cookies_of(scope).get(SESSION_COOKIE)
            try:
                session = await authenticator.session(cookie) if cookie else None
            except Exception as exc:
                log.warning("sessions cannot be checked", error=repr(exc)[:300])
                await _refuse(send, 503, "credentials_unavailable", "sessions cannot be checked now; retry")
                return
            if session is not None:
                if method not in _SAFE_METHODS and path not in FORM_POSTS:
                    presented = header(scope, b"x-csrftoken") or header(scope, b"x-csrf-token") or ""
                    if not hmac.compare_digest(presented.encode(), session.csrf_token.encode()):
                        await _refuse(send, 403, "csrf_token_missing", "the request lacks this session's CSRF token")
                        return
                state["principal"] = session.principal
                state["session"] = session
        if state["principal"] is None and path not in PUBLIC_PATHS:
            if method in _SAFE_METHODS and _is_page(path):
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + (f"?{query}" if query else "")
                await _redirect(send, f"/login?next={quote(target, safe='')}")
            else:
                await _refuse(send, 401, "not_authenticated", "log in, or send Authorization: Bearer <token>")
            return
        await self.app(scope, receive, send)


def _is_page(path: str) -> bool:
    """A page a person opens (worth a redirect to the login page), not a script's or a browser's own request."""
    return not (path.startswith(("/api/", "/_dash", "/assets/")) or path in ("/openapi.json", "/favicon.ico"))


def _with_security_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name for name, _ in headers}
            headers += [(name, value) for name, value in _SECURITY_HEADERS if name not in present]
            message["headers"] = headers
        await send(message)

    return sending


async def _refuse(send: Send, status: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="zixly"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
