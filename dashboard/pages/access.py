"""Access: a tenant admin's users, API tokens and webhook signing secret (a platform admin's, for any tenant).

New passwords, tokens and secrets are shown once, here, and stored only hashed or sealed. Every change is audited.
A tenant admin acts on their own tenant whatever the page sends; only a platform admin chooses the tenant.
"""

import secrets
import uuid
from datetime import timedelta
from typing import Any

import flask
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from sqlalchemy import select

from dashboard.authorization import viewer
from dashboard.page_data import PageData
from dashboard.sessions import end_sessions_of
from dashboard.users import UserDirectory
from identity.api_tokens import ApiTokens
from identity.audit import AuditEntry, record_sync
from identity.tenants import TenantDirectory
from kernel.database import EVERY_TENANT, TenantScope, run_with_engine, scoped_sync
from kernel.secret_box import SecretBox
from schemas.access import TOKEN_ROLES, Permission, Principal, Role
from schemas.operational_tables import tenants

PERMISSION = Permission.MANAGE_TOKENS
_ROLE_OPTIONS = [{"label": role.value, "value": role.value} for role in TOKEN_ROLES]


def _tenants(data: PageData, principal: Principal) -> list[str]:
    if not principal.all_tenants:
        return [principal.tenant_id] if principal.tenant_id else []
    with scoped_sync(data.engine, EVERY_TENANT) as connection:
        return [row for (row,) in connection.execute(select(tenants.c.id).order_by(tenants.c.id))]


def layout(principal: Principal, data: PageData) -> html.Section:
    choices = _tenants(data, principal)

    def field(label: str, component: Any) -> html.Div:
        return html.Div([html.Label(label, htmlFor=component.id), component])

    return html.Section(
        [
            html.H1("Access"),
            html.Div(
                [
                    field(
                        "tenant",
                        dcc.Dropdown(
                            choices,
                            choices[0] if choices else None,
                            id="access-tenant",
                            clearable=False,
                            disabled=not principal.all_tenants,
                        ),
                    )
                ],
                className="filters",
            ),
            html.Div(id="access-result", className="card", role="status"),
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Users"),
                            html.Div(id="access-users"),
                            html.Div(
                                [
                                    field("e-mail", dcc.Input(id="access-user-email", type="email")),
                                    field(
                                        "role",
                                        dcc.Dropdown(_ROLE_OPTIONS, "viewer", id="access-user-role", clearable=False),
                                    ),
                                ],
                                className="filters",
                            ),
                            html.Button("Add user", id="access-user-add"),
                            html.Button("Reset password", id="access-user-reset"),
                            html.Button("Disable user", id="access-user-disable"),
                        ],
                        className="card",
                    ),
                    html.Div(
                        [
                            html.H2("API tokens"),
                            html.Div(id="access-tokens"),
                            html.Div(
                                [
                                    field("name", dcc.Input(id="access-token-name", type="text")),
                                    field(
                                        "role",
                                        dcc.Dropdown(_ROLE_OPTIONS, "viewer", id="access-token-role", clearable=False),
                                    ),
                                    field("expires in days", dcc.Input(id="access-token-days", type="number", min=1)),
                                    field("token id to revoke", dcc.Input(id="access-token-id", type="text")),
                                ],
                                className="filters",
                            ),
                            html.Button("Create token", id="access-token-create"),
                            html.Button("Revoke token", id="access-token-revoke"),
                        ],
                        className="card",
                    ),
                ],
                className="cards",
            ),
            html.Div(
                [
                    html.H2("Webhook signing secret"),
                    html.P(
                        "A new secret; the current ones keep working for 24 hours so senders can switch.",
                        className="muted",
                    ),
                    html.Button("Rotate secret", id="access-secret-rotate"),
                ],
                className="card",
            ),
        ]
    )


def _tenant_of(principal: Principal, chosen: str | None) -> str | None:
    """The tenant acted on: the caller's own, unless a platform admin chose one."""
    return chosen if principal.all_tenants else principal.tenant_id


def _users_table(data: PageData, tenant: str) -> Any:
    users = UserDirectory(data.engine).list(TenantScope.of(tenant))
    rows = [
        html.Tr(
            [
                html.Td(u.email),
                html.Td(u.role.value),
                html.Td(u.auth_provider),
                html.Td("disabled" if u.disabled_at else "active"),
            ]
        )
        for u in users
        if u.tenant_id == tenant
    ]
    header = html.Tr([html.Th("e-mail"), html.Th("role"), html.Th("sign-in"), html.Th("state")])
    return html.Div(html.Table([header, *rows], className="plain", id="access-users-table"), className="table-scroll")


def _tokens_table(data: PageData, tenant: str) -> Any:
    tokens = run_with_engine(data.settings, lambda engine: ApiTokens(engine).list(tenant), service="dashboard")
    header = html.Tr([html.Th(name) for name in ("id", "name", "role", "state", "expires", "last used")])
    rows = [
        html.Tr(
            [
                html.Td(str(t.id)),
                html.Td(t.name),
                html.Td(t.role.value),
                html.Td(t.state),
                html.Td(f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"),
                html.Td(f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else ""),
            ]
        )
        for t in tokens
    ]
    return html.Div(html.Table([header, *rows], className="plain", id="access-tokens-table"), className="table-scroll")


def _shown_once(what: str, value: str) -> html.Div:
    return html.Div(
        [html.P(f"{what} (shown once; copy it now):"), html.Pre(value, id="access-secret-value")], id="access-shown"
    )


def _client() -> str | None:
    return flask.request.remote_addr


def register(app: Dash, data: PageData) -> None:
    @app.callback(
        Output("access-users", "children"),
        Output("access-tokens", "children"),
        Output("access-result", "children"),
        Input("access-tenant", "value"),
        Input("access-user-add", "n_clicks"),
        Input("access-user-reset", "n_clicks"),
        Input("access-user-disable", "n_clicks"),
        Input("access-token-create", "n_clicks"),
        Input("access-token-revoke", "n_clicks"),
        Input("access-secret-rotate", "n_clicks"),
        State("access-user-email", "value"),
        State("access-user-role", "value"),
        State("access-token-name", "value"),
        State("access-token-role", "value"),
        State("access-token-days", "value"),
        State("access-token-id", "value"),
    )
    def act(
        chosen: str | None,
        _add: Any,
        _reset: Any,
        _disable: Any,
        _create: Any,
        _revoke: Any,
        _rotate: Any,
        email: str | None,
        user_role: str | None,
        token_name: str | None,
        token_role: str | None,
        token_days: float | None,
        token_id: str | None,
    ) -> tuple[Any, Any, Any]:
        caller = viewer()
        tenant = _tenant_of(caller, chosen)
        if tenant is None:
            return None, None, html.P("no tenant to manage", className="muted")
        action = ctx.triggered_id if ctx.triggered_id != "access-tenant" else None
        try:
            result = _perform(
                data, caller, tenant, action, email, user_role, token_name, token_role, token_days, token_id
            )
        except ValueError as exc:
            record_sync(
                data.engine,
                AuditEntry(
                    caller.actor,
                    f"access.{action}",
                    tenant,
                    email or token_id,
                    "failed",
                    _client(),
                    {"reason": str(exc)[:300]},
                ),
            )
            result = html.P(str(exc), className="error", id="access-error")
        return _users_table(data, tenant), _tokens_table(data, tenant), result if action else no_update


def _perform(
    data: PageData,
    caller: Principal,
    tenant: str,
    action: str | None,
    email: str | None,
    user_role: str | None,
    token_name: str | None,
    token_role: str | None,
    token_days: float | None,
    token_id: str | None,
) -> Any:
    users = UserDirectory(data.engine)

    def audit(action_name: str, target: str | None, **detail: object) -> None:
        record_sync(data.engine, AuditEntry(caller.actor, action_name, tenant, target, "ok", _client(), dict(detail)))

    if action is None:
        return None
    if action in ("access-user-add", "access-user-reset", "access-user-disable") and not email:
        raise ValueError("give the user's e-mail address")
    if action == "access-user-add":
        assert email is not None
        role = Role(user_role or "viewer")
        if role not in TOKEN_ROLES:
            raise ValueError("a tenant's user is a viewer, an operator or a tenant admin")
        password = secrets.token_urlsafe(18)
        users.create(email, role, tenant, password)
        audit("user.create", email, role=role.value)
        return _shown_once(f"{email}'s password", password)
    if action in ("access-user-reset", "access-user-disable"):
        assert email is not None
        owned = {u.email.lower(): u for u in users.list(TenantScope.of(tenant)) if u.tenant_id == tenant}
        user = owned.get(email.lower())
        if user is None:
            raise ValueError(f"no user {email} in tenant {tenant}")
        if action == "access-user-reset":
            password = secrets.token_urlsafe(18)
            users.reset_password(email, password, tenant)
            ended = end_sessions_of(data.engine, user.id)
            audit("user.reset_password", email, sessions_ended=ended)
            return _shown_once(f"{email}'s new password", password)
        users.set_disabled(email, True, tenant)
        ended = end_sessions_of(data.engine, user.id)
        audit("user.disable", email, sessions_ended=ended)
        return html.P(f"{email} disabled; {ended} session(s) ended")
    if action == "access-token-create":
        role = Role(token_role or "viewer")
        lifetime = timedelta(days=float(token_days)) if token_days else None
        name = (token_name or f"{role} token")[:200]
        info, token = run_with_engine(
            data.settings,
            lambda engine: ApiTokens(engine).create(tenant, name, role, caller.actor, lifetime),
            service="dashboard",
        )
        audit("token.create", str(info.id), role=role.value, token_name=name)
        return _shown_once(f"token {info.id}", token)
    if action == "access-token-revoke":
        try:
            parsed = uuid.UUID((token_id or "").strip())
        except ValueError:
            raise ValueError("give the id of the token to revoke (from the table)") from None
        run_with_engine(data.settings, lambda engine: ApiTokens(engine).revoke(parsed, tenant), service="dashboard")
        audit("token.revoke", str(parsed))
        return html.P(f"token {parsed} revoked")
    if action == "access-secret-rotate":
        box = SecretBox.from_text(data.settings.master_keys.get_secret_value())
        secret = run_with_engine(
            data.settings,
            lambda engine: TenantDirectory(engine, box).rotate(tenant, timedelta(hours=24)),
            service="dashboard",
        )
        audit("secret.rotate", tenant, overlap_hours=24)
        return _shown_once(f"{tenant}'s new webhook secret", secret)
    raise ValueError(f"unknown action {action}")
