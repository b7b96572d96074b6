"""The operators' pages: a shell (navigation, live-update status, notification opt-in) and a router over the pages.

Every page reads projections through ``PageData``; none triggers, cancels or retries a job. Pages that follow jobs
live subscribe to ``/api/jobs/subscribe`` from the browser (``assets/zixly_live.js``): the server pushes, no screen
polls the database.
"""

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, dcc, html

from dashboard.page_data import PageData
from dashboard.pages import health, job_detail, jobs, overview, sweeps
from dashboard.pages.clientside import clientside
from kernel.settings import Settings

NAVIGATION = (("/", "Overview"), ("/jobs", "Jobs"), ("/sweeps", "Sweeps"), ("/health", "Pipeline health"))


def _shell() -> html.Div:
    return html.Div([
        dcc.Location(id="url", refresh="callback-nav"),
        html.Header([
            dcc.Link("Zixly Pipeline", href="/", className="brand"),
            html.Nav([dcc.Link(label, href=href, id=f"nav-{label.split()[0].lower()}", className="nav-link")
                      for href, label in NAVIGATION]),
            html.Div([
                html.Span("○ connecting", id="live-status", className="live-status", title="live updates"),
                html.Button("Notify me when jobs finish", id="notify-toggle", className="notify-toggle"),
            ], className="header-tools"),
        ], className="top-bar"),
        html.Main(id="page", className="page"),
    ])  # fmt: skip


def route(pathname: str | None, search: str | None, data: PageData) -> Any:
    query = {name: values for name, values in parse_qs((search or "").lstrip("?")).items()}
    path = (pathname or "/").rstrip("/") or "/"
    if path == "/":
        return overview.layout(query)
    if path == "/jobs":
        return jobs.layout(query, data)
    if path.startswith("/jobs/"):
        return job_detail.layout(path.removeprefix("/jobs/"))
    if path == "/sweeps":
        return sweeps.layout(query, data)
    if path == "/health":
        return health.layout()
    return html.Section([html.H1("Not found"), html.P(f"No page at {path}."), dcc.Link("Overview", href="/")])


def create_app(settings: Settings, data: PageData | None = None) -> dash.Dash:
    data = data or PageData(settings)
    app = dash.Dash(
        __name__, title="Zixly Pipeline", update_title="", suppress_callback_exceptions=True,
        assets_folder=str(Path(__file__).parent / "assets"),
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )  # fmt: skip
    app.layout = _shell()

    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def render(pathname: str | None, search: str | None) -> Any:
        return route(pathname, search, data)

    clientside(
        app,
        "function(clicks) { return window.zixly.toggleNotifications(clicks); }",
        Output("notify-toggle", "children"), Input("notify-toggle", "n_clicks"),
    )  # fmt: skip
    for page in (overview, jobs, job_detail, sweeps, health):
        page.register(app, data)
    return app
