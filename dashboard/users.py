"""The dashboard's own users: e-mail, role, tenant, and an argon2id password hash (or an OIDC subject).

Managed with ``zixly users`` and by tenant admins on the dashboard's Access page; read at login.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func, insert, select, update

from kernel.database import EVERY_TENANT, TenantScope, scoped_sync
from schemas.access import Principal, Role
from schemas.identity_tables import dashboard_users

MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so that an unknown address costs as long as a wrong password.
_DECOY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    tenant_id: str | None
    email: str
    role: Role
    auth_provider: str
    created_at: datetime
    disabled_at: datetime | None

    def principal(self) -> Principal:
        return Principal("oidc" if self.auth_provider == "oidc" else "user", self.email, self.role, self.tenant_id)


_COLUMNS = [dashboard_users.c[name] for name in User.__dataclass_fields__]


def _user(row: Any) -> User:
    values = dict(row)
    return User(**{**values, "role": Role(values["role"])})


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def _check_membership(tenant_id: str | None, role: Role) -> None:
    if (role is Role.PLATFORM_ADMIN) != (tenant_id is None):
        raise ValueError("a platform admin has no tenant, and every other user has one")


class UserDirectory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, email: str, role: Role, tenant_id: str | None, password: str | None) -> User:
        _check_membership(tenant_id, role)
        if password is not None:
            check_password_strength(password)
        scope = TenantScope.of(tenant_id) if tenant_id else EVERY_TENANT
        with scoped_sync(self._engine, scope) as connection:
            taken = connection.execute(
                select(dashboard_users.c.id).where(func.lower(dashboard_users.c.email) == email.lower())
            ).first()
            if taken is not None:
                raise ValueError(f"a user with e-mail {email} exists already")
            row = (
                connection.execute(
                    insert(dashboard_users)
                    .values(
                        id=uuid.uuid4(),
                        tenant_id=tenant_id,
                        email=email,
                        role=role.value,
                        password_hash=_hasher.hash(password) if password else None,
                        password_changed_at=datetime.now(UTC) if password else None,
                    )
                    .returning(*_COLUMNS)
                )
                .mappings()
                .one()
            )
        return _user(row)

    def reset_password(self, email: str, password: str, tenant_id: str | None = None) -> User:
        """A new password for the user (of ``tenant_id`` when given: a tenant admin resets only its own)."""
        check_password_strength(password)
        return self._update(
            email, tenant_id, password_hash=_hasher.hash(password), password_changed_at=datetime.now(UTC)
        )

    def set_disabled(self, email: str, disabled: bool, tenant_id: str | None = None) -> User:
        return self._update(email, tenant_id, disabled_at=datetime.now(UTC) if disabled else None)

    def create_or_reset(self, email: str, role: Role, tenant_id: str | None, password: str) -> User:
        """The user with this password: created, or given the password if it exists (a stack's own admins)."""
        try:
            return self.reset_password(email, password)
        except ValueError:
            return self.create(email, role, tenant_id, password)

    def _update(self, email: str, tenant_id: str | None, **values: object) -> User:
        scope = TenantScope.of(tenant_id) if tenant_id else EVERY_TENANT
        with scoped_sync(self._engine, scope) as connection:
            statement = (
                update(dashboard_users)
                .where(func.lower(dashboard_users.c.email) == email.lower())
                .values(**values)
                .returning(*_COLUMNS)
            )
            row = connection.execute(statement).mappings().first()
        if row is None:
            raise ValueError(f"no user with e-mail {email}")
        return _user(row)

    def list(self, scope: TenantScope) -> list[User]:
        with scoped_sync(self._engine, scope) as connection:
            rows = connection.execute(select(*_COLUMNS).order_by(dashboard_users.c.tenant_id, dashboard_users.c.email))
            return [_user(row) for row in rows.mappings()]

    def get(self, user_id: uuid.UUID) -> User | None:
        with scoped_sync(self._engine, EVERY_TENANT) as connection:
            row = connection.execute(select(*_COLUMNS).where(dashboard_users.c.id == user_id)).mappings().first()
        return _user(row) if row else None

    def verify_password(self, email: str, password: str) -> User | None:
        """The user when the password is theirs (and they may log in); None otherwise, in about the same time."""
        # Finding the account comes before anyone's tenant is known.
        with scoped_sync(self._engine, EVERY_TENANT) as connection:
            row = (
                connection.execute(
                    select(*_COLUMNS, dashboard_users.c.password_hash).where(
                        func.lower(dashboard_users.c.email) == email.lower()
                    )
                )
                .mappings()
                .first()
            )
        stored = row["password_hash"] if row else None
        try:
            _hasher.verify(stored or _DECOY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or stored is None or row["disabled_at"] is not None:
            return None
        return _user({name: row[name] for name in User.__dataclass_fields__})

    def upsert_external(self, email: str, subject: str, role: Role, tenant_id: str | None) -> User:
        """A user who signed in with OIDC: created on first sign-in, role and tenant taken from each sign-in's
        claims. An address that belongs to a local user is refused rather than merged."""
        _check_membership(tenant_id, role)
        with scoped_sync(self._engine, EVERY_TENANT) as connection:
            existing = (
                connection.execute(
                    select(*_COLUMNS, dashboard_users.c.subject).where(
                        func.lower(dashboard_users.c.email) == email.lower()
                    )
                )
                .mappings()
                .first()
            )
            if existing is not None and (existing["auth_provider"] != "oidc" or existing["subject"] != subject):
                raise ValueError(f"{email} belongs to another account; it cannot sign in through OIDC")
            if existing is not None and existing["disabled_at"] is not None:
                raise ValueError(f"{email} is disabled")
            if existing is None:
                row = (
                    connection.execute(
                        insert(dashboard_users)
                        .values(
                            id=uuid.uuid4(),
                            tenant_id=tenant_id,
                            email=email,
                            role=role.value,
                            auth_provider="oidc",
                            subject=subject,
                        )
                        .returning(*_COLUMNS)
                    )
                    .mappings()
                    .one()
                )
            else:
                row = (
                    connection.execute(
                        update(dashboard_users)
                        .where(dashboard_users.c.id == existing["id"])
                        .values(tenant_id=tenant_id, role=role.value)
                        .returning(*_COLUMNS)
                    )
                    .mappings()
                    .one()
                )
        return _user(row)
