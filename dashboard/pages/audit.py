"""The audit log: a tenant admin sees their tenant's entries, a platform admin everyone's (row-level security)."""

from datetime import UTC
from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboard.authorization import scope_of, viewer
from dashboard.page_data import PageData
from identity.audit import recent_entries
from schemas.access import Permission, Principal

PERMISSION = Permission.READ_AUDIT
ACTIONS = (
    "login",
    "logout",
    "user.create",
    "user.reset_password",
    "user.disable",
    "token.create",
    "token.revoke",
    "secret.rotate",
    "artifact.links",
    "results.download",
    "job.cancel",
    "job.resubmit",
    "sweep.rerun",
    "replay",
    "keys.rotate",
    "tenant.create",
)


def layout(principal: Principal) -> html.Section:
    whose = "every tenant" if principal.all_tenants else f"tenant {principal.tenant_id}"
    return html.Section(
        [
            html.H1("Audit log"),
            html.P(f"The newest entries of {whose}: who did what, when, from where.", className="muted"),
            html.Div(
                [
                    html.Label("action", htmlFor="audit-action"),
                    dcc.Dropdown(list(ACTIONS), None, id="audit-action", placeholder="every action"),
                ],
                className="filters",
            ),
            html.Div(id="audit-entries", className="card"),
        ]
    )


def _row(entry: dict[str, Any]) -> html.Tr:
    return html.Tr(
        [
            html.Td(f"{entry['at'].astimezone(UTC):%Y-%m-%d %H:%M:%S}"),
            html.Td(entry["tenant_id"] or ""),
            html.Td(entry["actor"]),
            html.Td(entry["action"]),
            html.Td(entry["target"] or ""),
            html.Td(entry["outcome"], className=f"outcome-{entry['outcome']}"),
            html.Td(entry["ip"] or ""),
        ]
    )


def register(app: Dash, data: PageData) -> None:
    @app.callback(Output("audit-entries", "children"), Input("audit-action", "value"))
    def entries(action: str | None) -> Any:
        rows = recent_entries(data.engine, scope_of(viewer()), 200, action=action)
        header = html.Tr(
            [html.Th(name) for name in ("at (UTC)", "tenant", "who", "action", "target", "outcome", "from")]
        )
        table = html.Table([header, *(_row(entry) for entry in rows)], className="plain", id="audit-table")
        return html.Div(table, className="table-scroll")
