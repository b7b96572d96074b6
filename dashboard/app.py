"""The operators' pages: a shell (navigation, the signed-in user, live-update status, notification opt-in) and a
router over the pages.

Every page reads projections through ``PageData`` in the viewer's tenant scope; none triggers a job. Pages that
follow jobs live subscribe to ``/api/jobs/subscribe`` from the browser (``assets/zixly_live.js``): the server
pushes, no screen polls the database.

Each page declares the permission its callbacks need; the server refuses a callback before it runs when the
caller lacks it, or when a callback was registered without one.
"""

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dash
import flask
from dash import Input, Output, State, dcc, html

from dashboard import figures
from dashboard.authorization import dash_principal
from dashboard.page_data import PageData
from dashboard.pages import access, audit, health, job_actions, job_detail, jobs, overview, sweeps
from dashboard.pages.clientside import clientside
from kernel.settings import Settings
from schemas.access import Permission, Principal

# (path, label, permission to see it)
NAVIGATION = (
    ("/", "Overview", Permission.READ_JOBS),
    ("/jobs", "Jobs", Permission.READ_JOBS),
    ("/sweeps", "Sweeps", Permission.READ_JOBS),
    ("/health", "Pipeline health", Permission.READ_JOBS),
    ("/jobs?status=DEAD_LETTERED", "Dead letters", Permission.READ_DEAD_LETTERS),
    ("/access", "Access", Permission.MANAGE_TOKENS),
    ("/audit", "Audit log", Permission.READ_AUDIT),
)
PAGES = (overview, jobs, job_detail, job_actions, sweeps, health, access, audit)


def _who(principal: Principal | None) -> Any:
    if principal is None:
        return None
    csrf = flask.request.cookies.get("_csrf_token", "")
    badge_class = "role-badge platform" if principal.all_tenants else "role-badge"
    where = "all tenants" if principal.all_tenants else principal.tenant_id
    return html.Div(
        [
            html.Span(f"{principal.role} · {where}", className=badge_class, id="role-badge"),
            html.Span(principal.subject, className="who", id="signed-in-as"),
            html.Form(
                [
                    dcc.Input(type="hidden", name="csrf_token", value=csrf),
                    html.Button("Log out", type="submit", id="logout", className="logout"),
                ],
                method="POST",
                action="/logout",
                className="logout-form",
            ),
        ],
        className="who-box",
    )


def _shell() -> html.Div:
    principal = dash_principal()
    links = [
        dcc.Link(label, href=href, id=f"nav-{label.split()[0].lower()}", className="nav-link")
        for href, label, permission in NAVIGATION
        if principal is not None and principal.may(permission)
    ]
    banner = None
    if principal is not None and principal.all_tenants:
        banner = html.Div(
            "Platform admin: you are seeing every tenant's data.", className="platform-banner", id="platform-banner"
        )
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                [
                    dcc.Link("Zixly Pipeline", href="/", className="brand"),
                    html.Nav(links),
                    html.Div(
                        [
                            html.Span("○ connecting", id="live-status", className="live-status", title="live updates"),
                            html.Button("Notify me when jobs finish", id="notify-toggle", className="notify-toggle"),
                            _who(principal),
                        ],
                        className="header-tools",
                    ),
                ],
                className="top-bar",
            ),
            banner,
            html.Main(id="page", className="page"),
        ]
    )


def _not_allowed(principal: Principal, permission: Permission) -> html.Section:
    return html.Section(
        [html.H1("Not allowed"), html.P(f"A {principal.role} may not {permission}."), dcc.Link("Overview", href="/")],
        id="not-allowed",
    )


def route(pathname: str | None, search: str | None, data: PageData, principal: Principal | None) -> Any:
    if principal is None:
        return None
    query = {name: values for name, values in parse_qs((search or "").lstrip("?")).items()}
    path = (pathname or "/").rstrip("/") or "/"
    if path == "/":
        return overview.layout(query)
    if path == "/jobs":
        return jobs.layout(query, data)
    if path.startswith("/jobs/"):
        return job_detail.layout(path.removeprefix("/jobs/"), principal)
    if path == "/sweeps":
        return sweeps.layout(query, data)
    if path == "/health":
        return health.layout()
    if path == "/access":
        return (
            access.layout(principal, data)
            if principal.may(access.PERMISSION)
            else _not_allowed(principal, access.PERMISSION)
        )
    if path == "/audit":
        return audit.layout(principal) if principal.may(audit.PERMISSION) else _not_allowed(principal, audit.PERMISSION)
    return html.Section([html.H1("Not found"), html.P(f"No page at {path}."), dcc.Link("Overview", href="/")])


def callback_permissions(app: dash.Dash) -> dict[str, Permission]:
    """The permission of every callback the app has, by its output key (what Dash's requests name)."""
    permissions: dict[str, Permission] = app.server.config["ZIXLY_CALLBACK_PERMISSIONS"]
    return permissions


def _registered(app: dash.Dash, permissions: dict[str, Permission], permission: Permission, register: Any) -> None:
    before = set(app.callback_map)
    register()
    for output in set(app.callback_map) - before:
        permissions[output] = permission


def create_app(settings: Settings, data: PageData | None = None) -> dash.Dash:
    data = data or PageData(settings)
    figures.warm_up()
    app = dash.Dash(
        __name__,
        title="Zixly Pipeline",
        update_title="",
        suppress_callback_exceptions=True,
        assets_folder=str(Path(__file__).parent / "assets"),
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = _shell
    permissions: dict[str, Permission] = {}
    app.server.config["ZIXLY_CALLBACK_PERMISSIONS"] = permissions

    def shell_callbacks() -> None:
        @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
        def render(pathname: str | None, search: str | None) -> Any:
            return route(pathname, search, data, dash_principal())

        clientside(
            app,
            "function(clicks) { return window.zixly.toggleNotifications(clicks); }",
            Output("notify-toggle", "children"),
            Input("notify-toggle", "n_clicks"),
        )

    _registered(app, permissions, Permission.READ_JOBS, shell_callbacks)
    for page in PAGES:
        _registered(app, permissions, page.PERMISSION, lambda page=page: page.register(app, data))

    @app.server.before_request  # type: ignore[untyped-decorator]
    def authorize_callback() -> Any:
        """Refuses a callback the caller may not run, before Dash runs it: the rule is per callback, so a page's
        own checks never stand alone."""
        if flask.request.method != "POST" or not flask.request.path.endswith("/_dash-update-component"):
            return None
        principal = dash_principal()
        if principal is None:
            return flask.Response("log in first", status=401)
        output = (flask.request.get_json(silent=True) or {}).get("output")
        permission = permissions.get(output) if isinstance(output, str) else None
        if permission is None:
            return flask.Response("no such callback", status=403)
        if not principal.may(permission):
            return flask.Response(f"a {principal.role} may not {permission}", status=403)
        return None

    return app
