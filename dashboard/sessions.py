"""Dashboard sessions: a random id in a signed, HttpOnly cookie; its SHA-256, user, role and expiry in Postgres.

A session ends at logout, after ``session_idle_minutes`` without a request, ``session_max_hours`` after login,
when its user is disabled or their password reset. The cookie is signed with the first of ``ZIXLY_SESSION_KEYS``
and verified with any of them, so the key can be rotated without logging everyone out.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, Signer
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.database import EVERY_TENANT, scoped, scoped_sync
from schemas.access import Principal, Role
from schemas.identity_tables import dashboard_sessions, dashboard_users

SESSION_COOKIE = "zixly_session"
# Dash's renderer sends this cookie's value back as the X-CSRFToken header of every callback.
CSRF_COOKIE = "_csrf_token"
# A request's use of a session is written at most this often (idle expiry needs no finer grain).
_TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True)
class Session:
    id_sha256: str
    principal: Principal
    user_id: uuid.UUID
    csrf_token: str
    expires_at: datetime


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class CookieSigner:
    def __init__(self, keys: str) -> None:
        ordered = [key.strip() for key in keys.split(",") if key.strip()]
        # itsdangerous signs with the last key and verifies with all of them; the setting lists the newest first.
        self._signer = Signer(list(reversed(ordered)), salt="zixly-session")

    def sign(self, value: str) -> str:
        return self._signer.sign(value).decode()

    def unsign(self, signed: str) -> str | None:
        try:
            return self._signer.unsign(signed).decode()
        except BadSignature:
            return None


class SessionStore:
    def __init__(self, engine: AsyncEngine, idle: timedelta, lifetime: timedelta) -> None:
        self._engine = engine
        self._idle = idle
        self._lifetime = lifetime

    async def open(
        self, user_id: uuid.UUID, principal: Principal, ip: str | None, user_agent: str | None
    ) -> tuple[str, str]:
        """A new session: its id (for the cookie) and its CSRF token."""
        session_id, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with scoped(self._engine, EVERY_TENANT) as connection:
            await connection.execute(
                insert(dashboard_sessions).values(
                    id_sha256=_digest(session_id),
                    user_id=user_id,
                    tenant_id=principal.tenant_id,
                    role=principal.role.value,
                    csrf_token=csrf_token,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self._lifetime,
                    ip=ip,
                    user_agent=(user_agent or "")[:500],
                )
            )
        return session_id, csrf_token

    async def resolve(self, session_id: str) -> Session | None:
        """The live session with this id, its last use recorded; None when it has ended for any reason."""
        now = datetime.now(UTC)
        query = (
            select(
                dashboard_sessions.c.id_sha256,
                dashboard_sessions.c.user_id,
                dashboard_sessions.c.csrf_token,
                dashboard_sessions.c.expires_at,
                dashboard_sessions.c.last_seen_at,
                dashboard_users.c.email,
                dashboard_users.c.auth_provider,
                dashboard_users.c.role,
                dashboard_users.c.tenant_id,
            )
            .join(dashboard_users, dashboard_users.c.id == dashboard_sessions.c.user_id)
            .where(
                dashboard_sessions.c.id_sha256 == _digest(session_id),
                dashboard_sessions.c.revoked_at.is_(None),
                dashboard_sessions.c.expires_at > now,
                dashboard_sessions.c.last_seen_at > now - self._idle,
                dashboard_users.c.disabled_at.is_(None),
            )
        )
        async with scoped(self._engine, EVERY_TENANT) as connection:
            row = (await connection.execute(query)).mappings().first()
            if row is None:
                return None
            if now - row["last_seen_at"] > _TOUCH_EVERY:
                await connection.execute(
                    update(dashboard_sessions)
                    .where(dashboard_sessions.c.id_sha256 == row["id_sha256"])
                    .values(last_seen_at=now)
                )
        # The user's role and tenant as they are now, not as they were at login: a demotion takes effect at once.
        kind = "oidc" if row["auth_provider"] == "oidc" else "user"
        principal = Principal(kind, row["email"], Role(row["role"]), row["tenant_id"])
        return Session(row["id_sha256"], principal, row["user_id"], row["csrf_token"], row["expires_at"])

    async def close(self, session_id: str) -> None:
        async with scoped(self._engine, EVERY_TENANT) as connection:
            await connection.execute(
                update(dashboard_sessions)
                .where(dashboard_sessions.c.id_sha256 == _digest(session_id))
                .values(revoked_at=datetime.now(UTC))
            )


def end_sessions_of(engine: Engine, user_id: uuid.UUID) -> int:
    """Ends every live session of the user (a password reset, a disabled account); how many there were."""
    with scoped_sync(engine, EVERY_TENANT) as connection:
        ended = connection.execute(
            update(dashboard_sessions)
            .where(dashboard_sessions.c.user_id == user_id, dashboard_sessions.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return int(ended.rowcount)
