"""What an authenticated caller may do: one permission per route and per Dash callback, checked before it runs.

The read-only API's routes declare ``requires(Permission.…)``; the Dash callbacks are registered with a permission
in ``CALLBACK_PERMISSIONS`` and refused by the server before they run when the caller lacks it (or when a callback
has no entry at all). Queries then run in the caller's tenant scope, where row-level security shows only the
caller's rows.
"""

from collections.abc import Callable
from typing import Any

from fastapi import Depends, HTTPException, Request

from kernel.database import EVERY_TENANT, TenantScope
from schemas.access import Permission, Principal

# The dependency functions made by ``requires``, so that a test can tell a route that checks from one that does not.
PERMISSION_CHECKS: dict[Callable[..., Any], Permission] = {}


def scope_of(principal: Principal) -> TenantScope:
    if principal.all_tenants:
        return EVERY_TENANT
    assert principal.tenant_id is not None
    return TenantScope.of(principal.tenant_id)


def principal_of(request: Request) -> Principal | None:
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    return principal


def requires(permission: Permission) -> Any:
    """A route dependency: the caller, when they may ``permission``; 401 without a caller, 403 without the role."""

    def check(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise HTTPException(401, detail="log in, or send Authorization: Bearer <token>")
        if not principal.may(permission):
            raise HTTPException(403, detail=f"a {principal.role} may not {permission}")
        return principal

    PERMISSION_CHECKS[check] = permission
    return Depends(check)


def dash_principal() -> Principal | None:
    """The caller of the Dash request being served (the authentication middleware put it in the ASGI scope)."""
    import flask

    scope = flask.request.environ.get("asgi.scope") or {}
    principal: Principal | None = scope.get("state", {}).get("principal")
    return principal


def viewer() -> Principal:
    """The caller of a Dash callback. The server refuses a callback without one before it runs; reaching here
    without one is a bug, so it fails rather than showing anything."""
    principal = dash_principal()
    if principal is None:
        raise PermissionError("a Dash callback ran without a caller")
    return principal


def viewer_scope() -> TenantScope:
    return scope_of(viewer())
