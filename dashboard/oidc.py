"""Sign-in through an external OpenID Connect provider, and bearer JWTs it issues.

The authorization-code flow with PKCE: the browser is sent to the provider with a state, a nonce and a code
challenge (kept in a short-lived signed cookie), comes back with a code, which the server exchanges for an id
token. Every token is verified against the provider's JWKS (fetched again when a token names an unknown key, so
the provider may rotate its keys), and its issuer, audience, expiry and, for sign-in, nonce. Two claims name the
tenant and the role.
"""

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from kernel.settings import Settings
from schemas.access import Principal, Role

# Asymmetric algorithms only: a provider's public keys must not double as HMAC secrets, and "none" never passes.
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
_LEEWAY_SECONDS = 30
# A forged token must not make us hammer the provider: its keys are fetched again at most this often.
_REFRESH_SECONDS = 30.0


class OidcRefused(Exception):
    """A token or a sign-in that does not hold up, with the reason."""


@dataclass(frozen=True)
class PendingSignIn:
    state: str
    nonce: str
    code_verifier: str
    next_path: str

    @classmethod
    def start(cls, next_path: str) -> "PendingSignIn":
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), next_path)

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    principal: Principal


class OidcProvider:
    def __init__(self, settings: Settings) -> None:
        if not (settings.oidc_issuer and settings.oidc_client_id):
            raise ValueError("OIDC needs ZIXLY_OIDC_ISSUER and ZIXLY_OIDC_CLIENT_ID")
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._client_id = settings.oidc_client_id
        self._client_secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
        self._audience = settings.oidc_audience or settings.oidc_client_id
        self._tenant_claim = settings.oidc_tenant_claim
        self._role_claim = settings.oidc_role_claim
        self._scopes = settings.oidc_scopes
        self._metadata: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None
        self._refreshed_at = -_REFRESH_SECONDS

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.get(f"{self.issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                metadata: dict[str, Any] = response.json()
            if metadata.get("issuer", "").rstrip("/") != self.issuer:
                raise OidcRefused(f"the provider calls itself {metadata.get('issuer')!r}, not {self.issuer!r}")
            self._metadata = metadata
            self._jwks = jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=False, lifespan=3600, timeout=10)
        return self._metadata

    async def authorization_url(self, pending: PendingSignIn, redirect_uri: str) -> str:
        metadata = await self.metadata()
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": self._scopes,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": pending.code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{metadata['authorization_endpoint']}?{urlencode(query)}"

    async def sign_in(self, code: str, pending: PendingSignIn, redirect_uri: str) -> Identity:
        """Exchanges the code for tokens and verifies the id token."""
        metadata = await self.metadata()
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                metadata["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": pending.code_verifier,
                },
                auth=(self._client_id, self._client_secret),
            )
        if response.status_code != 200:
            raise OidcRefused(f"the provider refused the code: {response.status_code} {response.text[:200]}")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("the provider answered without an id token")
        return await self.verify(id_token, nonce=pending.nonce, audience=self._client_id)

    async def verify(self, token: str, nonce: str | None = None, audience: str | None = None) -> Identity:
        """The identity a signed token carries; OidcRefused with the reason for a forged, expired or foreign one.

        A token whose key is unknown, or whose signature fails with the cached key, makes the keys be fetched
        again (at most every ``_REFRESH_SECONDS``): that is how a provider's key rotation reaches us."""
        await self.metadata()
        try:
            claims = self._decode(token, await self._key_for(token, refresh=False), audience)
        except jwt.InvalidSignatureError:
            if not self._may_refresh():
                raise OidcRefused("the token's signature does not match the provider's keys") from None
            try:
                claims = self._decode(token, await self._key_for(token, refresh=True), audience)
            except jwt.InvalidSignatureError:
                raise OidcRefused("the token's signature does not match the provider's keys") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise OidcRefused("the id token's nonce is not this sign-in's")
        return self._identity(claims)

    def _may_refresh(self) -> bool:
        now = time.monotonic()
        if now - self._refreshed_at < _REFRESH_SECONDS:
            return False
        self._refreshed_at = now
        return True

    async def _key_for(self, token: str, refresh: bool) -> jwt.PyJWK:
        assert self._jwks is not None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise OidcRefused(f"the token is not a JWT: {exc}") from None
        try:
            keys = await asyncio.to_thread(self._jwks.get_signing_keys, refresh)
        except jwt.PyJWKClientError as exc:
            raise OidcRefused(f"the provider's keys cannot be read: {exc}") from None
        for key in keys:
            if key.key_id == kid:
                return key
        if not refresh and self._may_refresh():
            return await self._key_for(token, refresh=True)
        raise OidcRefused("the token is signed with a key the provider does not publish")

    def _decode(self, token: str, key: jwt.PyJWK, audience: str | None) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=audience or self._audience,
                issuer=self.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidSignatureError:
            raise
        except jwt.InvalidTokenError as exc:
            raise OidcRefused(f"the token is not valid: {exc}") from None
        return claims

    def _identity(self, claims: dict[str, Any]) -> Identity:
        try:
            role = Role(str(claims.get(self._role_claim, "")))
        except ValueError:
            raise OidcRefused(f"the token's {self._role_claim!r} claim names no role") from None
        tenant = claims.get(self._tenant_claim)
        if role is Role.PLATFORM_ADMIN:
            tenant = None
        elif not isinstance(tenant, str) or not tenant:
            raise OidcRefused(f"the token has no {self._tenant_claim!r} claim naming a tenant")
        email = str(claims.get("email") or claims.get("preferred_username") or claims["sub"])
        return Identity(str(claims["sub"]), email, Principal("oidc", email, role, tenant))
