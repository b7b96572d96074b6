"""Who reads through the receiver: the tenant comes from a credential, never from a bare header.

``Authorization: Bearer zxt_…`` (an API token) names the tenant and the role. ``X-Tenant-ID`` alone is taken only
where unregistered tenants are allowed (development), and only for a tenant that is not registered: a registered
tenant's jobs are read with one of its tokens.
"""

from collections.abc import Mapping
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from identity.api_tokens import TokenRefused
from producers.errors import ApiError
from schemas.access import Principal, Role
from schemas.webhooks import ErrorDetail


class TokenAuthenticator(Protocol):
    async def authenticate(self, token: str) -> Principal: ...


class TenantRegistry(Protocol):
    async def exists(self, tenant_id: str) -> bool: ...


def bearer(headers: Mapping[str, str]) -> str | None:
    """The credential of an ``Authorization: Bearer`` header, if there is one."""
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


class ReadCallers:
    def __init__(self, tokens: TokenAuthenticator, tenants: TenantRegistry, allow_unregistered: bool) -> None:
        self._tokens = tokens
        self._tenants = tenants
        self._allow_unregistered = allow_unregistered

    async def identify(self, headers: Mapping[str, str]) -> Principal:
        token = bearer(headers)
        if token is not None:
            try:
                return await self._tokens.authenticate(token)
            except TokenRefused as refused:
                raise unauthorized("invalid_token", str(refused), "Authorization") from None
            except (SQLAlchemyError, OSError) as exc:
                raise ApiError(
                    503,
                    "credential_store_unavailable",
                    "cannot check the token now; retry later",
                    headers={"Retry-After": "5"},
                ) from exc
        tenant_id = headers.get("x-tenant-id")
        if tenant_id and self._allow_unregistered:
            if not await self._tenants.exists(tenant_id):
                return Principal("header", tenant_id, Role.VIEWER, tenant_id)
            raise unauthorized(
                "token_required",
                f"tenant {tenant_id!r} is registered: read with one of its API tokens (Authorization: Bearer)",
                "Authorization",
            )
        raise unauthorized(
            "missing_credentials", "read with an API token: Authorization: Bearer zxt_…", "Authorization"
        )


def unauthorized(code: str, message: str, header: str) -> ApiError:
    return ApiError(
        401,
        code,
        message,
        [ErrorDetail(loc=["header", header], msg=message, type=code)],
        headers={"WWW-Authenticate": 'Bearer realm="zixly"'},
    )
