"""Who a caller is and what their role lets them do: the contract every service checks against.

Roles are cumulative: an operator may do all a viewer may, a tenant admin all an operator may. A platform admin
may do everything, for every tenant.
"""

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    TENANT_ADMIN = "tenant-admin"
    PLATFORM_ADMIN = "platform-admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.TENANT_ADMIN: 2, Role.PLATFORM_ADMIN: 3}


class Permission(StrEnum):
    READ_JOBS = "read jobs and results"
    READ_STACK_TRACES = "read stack traces"
    READ_ARTIFACTS = "download artifacts"
    READ_DEAD_LETTERS = "read dead letters"
    CANCEL_JOBS = "cancel jobs"
    RESUBMIT_JOBS = "resubmit jobs"
    MANAGE_USERS = "manage users"
    MANAGE_TOKENS = "manage API tokens"
    ROTATE_SECRETS = "rotate webhook secrets"
    READ_AUDIT = "read the audit log"
    ALL_TENANTS = "act for every tenant"


MINIMUM_ROLE = {
    Permission.READ_JOBS: Role.VIEWER,
    Permission.READ_STACK_TRACES: Role.OPERATOR,
    Permission.READ_ARTIFACTS: Role.OPERATOR,
    Permission.READ_DEAD_LETTERS: Role.OPERATOR,
    Permission.CANCEL_JOBS: Role.OPERATOR,
    Permission.RESUBMIT_JOBS: Role.OPERATOR,
    Permission.MANAGE_USERS: Role.TENANT_ADMIN,
    Permission.MANAGE_TOKENS: Role.TENANT_ADMIN,
    Permission.ROTATE_SECRETS: Role.TENANT_ADMIN,
    Permission.READ_AUDIT: Role.TENANT_ADMIN,
    Permission.ALL_TENANTS: Role.PLATFORM_ADMIN,
}
# A token belongs to one tenant; acting for every tenant takes a person who signed in.
TOKEN_ROLES = (Role.VIEWER, Role.OPERATOR, Role.TENANT_ADMIN)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a dashboard user (session or OIDC), or an API token."""

    kind: str  # "user" | "token" | "oidc"
    subject: str  # e-mail address or token id
    role: Role
    tenant_id: str | None  # None only for a platform admin
    name: str = ""

    def __post_init__(self) -> None:
        if self.tenant_id is None and self.role is not Role.PLATFORM_ADMIN:
            raise ValueError("only a platform admin has no tenant")

    @property
    def all_tenants(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.kind}:{self.subject}"

    def may(self, permission: Permission) -> bool:
        return self.role.rank >= MINIMUM_ROLE[permission].rank

    def sees_tenant(self, tenant_id: str) -> bool:
        return self.all_tenants or tenant_id == self.tenant_id
