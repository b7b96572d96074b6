"""Signed webhooks (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

A known tenant's webhooks must be signed with one of its active secrets (several during a rotation); the library
checks the signature and that the timestamp is within its tolerance (5 minutes). Every refusal is a 401 that says
why. The webhook id then serves as the idempotency key, as the spec intends.
"""

import time
from collections.abc import Mapping
from typing import Protocol

import cachetools
from sqlalchemy.exc import SQLAlchemyError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from identity.tenants import TenantLimits, TenantSecrets
from kernel.logging import get_logger
from producers.errors import ApiError
from schemas.webhooks import ErrorDetail

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
CACHED_TENANTS = 10_000
STALE_SECRETS_SECONDS = 600.0
log = get_logger(__name__)


class TenantSource(Protocol):
    async def secrets_of(self, tenant_id: str) -> TenantSecrets | None: ...


class WebhookAuthenticator:
    def __init__(self, tenants: TenantSource, allow_unknown_tenants: bool, cache_seconds: float = 5.0) -> None:
        self._tenants = tenants
        self._allow_unknown = allow_unknown_tenants
        self._cache_seconds = cache_seconds
        # Keyed by a header anyone can send: bounded, the least recently asked for going first.
        self._cache: cachetools.LRUCache[str, tuple[float, TenantSecrets | None]] = cachetools.LRUCache(CACHED_TENANTS)

    async def authenticate(self, tenant_id: str, headers: Mapping[str, str], body: bytes) -> str | None:
        """The webhook id of a verified request (its idempotency key); None for an unsigned one that is allowed."""
        known = await self._secrets(tenant_id)
        if known is None:
            if self._allow_unknown:
                return None
            raise _unauthorized("unknown_tenant", f"tenant {tenant_id!r} is not registered", "X-Tenant-ID")
        present = {name: headers.get(name) for name in SIGNATURE_HEADERS}
        missing = [name for name, value in present.items() if not value]
        if missing:
            raise _unauthorized(
                "missing_signature_header",
                f"tenant {tenant_id!r} signs its webhooks; missing {', '.join(missing)}",
                missing[0],
            )
        signed = {name: value for name, value in present.items() if value}
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise _unauthorized(
                "bad_signature", "the body is not UTF-8, so no signature can match it", "webhook-signature"
            ) from None
        stale = False
        for secret in known.secrets:
            try:
                Webhook(secret).verify(text, signed, json_parse=False)
            except WebhookVerificationError as exc:
                if "too old" in str(exc) or "too new" in str(exc):
                    stale = True
                    break
                continue
            except ValueError:  # not "v1,<base64>" pairs separated by spaces
                raise _unauthorized(
                    "malformed_signature",
                    "webhook-signature must be space-separated 'v1,<base64>' signatures",
                    "webhook-signature",
                ) from None
            return signed["webhook-id"]
        if stale:
            raise _unauthorized(
                "stale_timestamp", "webhook-timestamp is outside the 5-minute tolerance", "webhook-timestamp"
            )
        raise _unauthorized(
            "bad_signature", "webhook-signature matches none of the tenant's active secrets", "webhook-signature"
        )

    async def limits_of(self, tenant_id: str) -> TenantLimits:
        """The tenant's own limits (from the same cached lookup as its secrets); the defaults for an unknown one."""
        known = await self._secrets(tenant_id)
        return known.limits if known is not None else TenantLimits()

    async def _secrets(self, tenant_id: str) -> TenantSecrets | None:
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            found = await self._tenants.secrets_of(tenant_id)
        except (SQLAlchemyError, OSError) as exc:
            # Ingest must not stop with the database: a tenant's last known secrets serve a while longer.
            if cached is not None and now - cached[0] < STALE_SECRETS_SECONDS:
                log.warning("tenant directory unreachable; using its last answer", error=repr(exc)[:200])
                return cached[1]
            raise ApiError(
                503,
                "tenant_directory_unavailable",
                "cannot check the tenant's signing secrets now; nothing was accepted, retry later",
                headers={"Retry-After": "5"},
            ) from exc
        self._cache[tenant_id] = (now, found)
        return found


def _unauthorized(code: str, message: str, header: str) -> ApiError:
    return ApiError(401, code, message, [ErrorDetail(loc=["header", header], msg=message, type=code)])
