"""The dashboard's shell. For now one page: job counts by status and the latest jobs, refreshed every 2 s."""

from typing import Any

import dash
from dash import Input, Output, dcc, html
from sqlalchemy import create_engine

from dashboard.queries import job_counts_by_status, recent_jobs
from kernel.settings import Settings
from schemas.job_status import JobStatus


def create_app(settings: Settings) -> dash.Dash:
    engine = create_engine(settings.sqlalchemy_url, pool_size=2, pool_pre_ping=True)
    app = dash.Dash(__name__, title="Zixly Pipeline")
    app.layout = html.Main(
        [
            html.H1("Zixly Pipeline"),
            html.P("Jobs as the read model sees them (placeholder until the operators' dashboard lands)."),
            html.Section(id="overview-counts"),
            html.Table(id="overview-recent"),
            dcc.Interval(id="overview-refresh", interval=2000),
        ],
        style={"fontFamily": "system-ui, sans-serif", "maxWidth": "70rem", "margin": "2rem auto"},
    )

    @app.callback(
        Output("overview-counts", "children"),
        Output("overview-recent", "children"),
        Input("overview-refresh", "n_intervals"),
    )
    def refresh(_: int | None) -> tuple[Any, Any]:
        counts = job_counts_by_status(engine)
        tiles = [
            html.Span(f"{status}: {counts.get(status, 0)}", style={"marginRight": "1.5rem"}) for status in JobStatus
        ]
        header = html.Tr([html.Th(name) for name in ("job", "tenant", "type", "status", "progress", "created")])
        rows = [
            html.Tr([
                html.Td(str(job["id"])), html.Td(str(job["tenant_id"])), html.Td(str(job["job_type"])),
                html.Td(str(job["status"])), html.Td(f"{float(str(job['progress'])):.0%}"),
                html.Td(str(job["created_at"])),
            ])
            for job in recent_jobs(engine)
        ]  # fmt: skip
        return tiles, [header, *rows]

    return app
