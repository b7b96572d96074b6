"""API tokens: how integrators and scripts read (``Authorization: Bearer zxt_…``), per tenant, with a role.

A token is ``zxt_<id>_<secret>``: the id finds its row, the secret (32 random bytes) is stored only as its SHA-256,
so a copy of the table cannot be used to call the API. A token is shown once, when it is created.
"""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import EVERY_TENANT, TenantScope, scoped
from schemas.access import TOKEN_ROLES, Principal, Role
from schemas.identity_tables import api_tokens

PREFIX = "zxt_"
# Writing every use would cost a write per request; the last use is recorded to this precision.
_LAST_USED_PRECISION = timedelta(minutes=5)


class TokenRefused(Exception):
    """Why a presented token does not authenticate (unknown, wrong, revoked or expired)."""


@dataclass(frozen=True)
class TokenInfo:
    id: uuid.UUID
    tenant_id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_token(credential: str) -> bool:
    return credential.startswith(PREFIX)


def _split(token: str) -> tuple[uuid.UUID, str]:
    try:
        token_id, secret = token.removeprefix(PREFIX).split("_", 1)
        return uuid.UUID(hex=token_id), secret
    except ValueError:
        raise TokenRefused("not a Zixly API token") from None


class ApiTokens:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self, tenant_id: str, name: str, role: Role, created_by: str, expires_in: timedelta | None
    ) -> tuple[TokenInfo, str]:
        """The new token's row and the token itself, which is never shown again."""
        if role not in TOKEN_ROLES:
            raise ValueError(f"a token's role is one of {', '.join(TOKEN_ROLES)}, not {role}")
        token_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + expires_in if expires_in else None
        async with scoped(self._engine, TenantScope.of(tenant_id)) as connection:
            await connection.execute(
                insert(api_tokens).values(
                    id=token_id,
                    tenant_id=tenant_id,
                    name=name,
                    role=role.value,
                    secret_sha256=_digest(secret),
                    created_by=created_by,
                    expires_at=expires_at,
                )
            )
        info = await self.get(token_id, tenant_id)
        assert info is not None
        return info, f"{PREFIX}{token_id.hex}_{secret}"

    async def get(self, token_id: uuid.UUID, tenant_id: str | None) -> TokenInfo | None:
        scope = TenantScope.of(tenant_id) if tenant_id else EVERY_TENANT
        async with scoped(self._engine, scope) as connection:
            row = (await connection.execute(select(*_INFO).where(api_tokens.c.id == token_id))).mappings().first()
        return _info(dict(row)) if row else None

    async def list(self, tenant_id: str | None) -> list[TokenInfo]:
        """A tenant's tokens (every tenant's with None), newest first; never their secrets."""
        query = select(*_INFO).order_by(api_tokens.c.created_at.desc())
        scope = EVERY_TENANT
        if tenant_id is not None:
            query, scope = query.where(api_tokens.c.tenant_id == tenant_id), TenantScope.of(tenant_id)
        async with scoped(self._engine, scope) as connection:
            return [_info(dict(row)) for row in (await connection.execute(query)).mappings()]

    async def revoke(self, token_id: uuid.UUID, tenant_id: str | None) -> TokenInfo:
        """Revokes the token (of ``tenant_id`` unless None); its next request is refused."""
        statement = update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        scope = EVERY_TENANT
        if tenant_id is not None:
            statement, scope = statement.where(api_tokens.c.tenant_id == tenant_id), TenantScope.of(tenant_id)
        async with scoped(self._engine, scope) as connection:
            await connection.execute(statement.values(revoked_at=datetime.now(UTC)))
        info = await self.get(token_id, tenant_id)
        if info is None:
            raise ValueError(f"no token {token_id}")
        return info

    async def authenticate(self, token: str) -> Principal:
        """The caller the token stands for; TokenRefused saying why otherwise."""
        token_id, secret = _split(token)
        now = datetime.now(UTC)
        # The tenant is what the token will tell: finding it is the one step that looks at every tenant's tokens.
        async with scoped(self._engine, EVERY_TENANT) as connection:
            row = (
                (
                    await connection.execute(
                        select(*_INFO, api_tokens.c.secret_sha256).where(api_tokens.c.id == token_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None or not hmac.compare_digest(row["secret_sha256"], _digest(secret)):
                raise TokenRefused("the token is not valid")
            info = _info(dict(row))
            if info.state != "active":
                raise TokenRefused(f"the token is {info.state}")
            if info.last_used_at is None or now - info.last_used_at > _LAST_USED_PRECISION:
                await connection.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))
        return Principal("token", str(info.id), info.role, info.tenant_id, info.name)


_INFO = [api_tokens.c[name] for name in TokenInfo.__dataclass_fields__]


def _info(row: dict[str, object]) -> TokenInfo:
    row.pop("secret_sha256", None)
    return TokenInfo(**{**row, "role": Role(str(row["role"]))})  # type: ignore[arg-type]


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``: the CLI's ``--expires-in``."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    value, unit = text[:-1], text[-1:]
    if unit not in units or not value.isdigit() or int(value) == 0:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h or 30m")
    return timedelta(**{units[unit]: int(value)})
