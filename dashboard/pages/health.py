"""The pipeline's health at a glance: projector lag per partition, data freshness, events/s, which workers are
running jobs, the latest errors, and each tenant's limits beside its jobs in flight. One shared reading every few
seconds, whoever is watching."""

from datetime import UTC
from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboard import figures
from dashboard.authorization import viewer_scope
from dashboard.page_data import Health, PageData
from dashboard.pages.clientside import clientside
from dashboard.pages.tiles import tile_row
from identity.tenants import limit_text
from schemas.access import Permission

PERMISSION = Permission.READ_JOBS

REFRESH_MS = 3_000


def layout() -> html.Section:
    return html.Section(
        [
            html.H1("Pipeline health"),
            html.Div(id="health-tiles", className="tiles"),
            html.Div(
                [
                    html.Div(
                        dcc.Graph(id="health-lag", config={"displaylogo": False, "responsive": True}), className="card"
                    ),
                    html.Div(
                        [html.H2("Partitions"), html.Div(id="health-partitions", className="table-scroll")],
                        className="card",
                    ),
                    html.Div(
                        [html.H2("Workers (last 15 minutes)"), html.Div(id="health-workers", className="table-scroll")],
                        className="card",
                    ),
                    html.Div(
                        [html.H2("Recent errors"), html.Div(id="health-errors", className="table-scroll")],
                        className="card",
                    ),
                    html.Div(
                        [html.H2("Tenant limits"), html.Div(id="health-limits", className="table-scroll")],
                        className="card wide",
                    ),
                ],
                className="cards",
            ),
            dcc.Interval(id="health-refresh", interval=REFRESH_MS),
            html.Span(id="health-live-note", hidden=True),
        ]
    )


def _table(header: list[str], rows: list[list[Any]], empty: str) -> Any:
    if not rows:
        return html.P(empty, className="muted")
    return html.Table(
        [html.Tr([html.Th(h) for h in header])] + [html.Tr([html.Td(c) for c in row]) for row in rows],
        className="plain",
    )


def _tiles(health: Health) -> list[html.Div]:
    lag = health.lag
    freshness = lag.freshness_seconds if lag else None
    shown = [
        ("events behind", f"{lag.lag:,}" if lag else "?"),
        ("caught up", ("yes" if lag.lag == 0 else "no") if lag else "?"),
        ("events/s", f"{lag.events_per_second:,.0f}" if lag else "?"),
        ("newest event age", f"{freshness:,.1f} s" if freshness is not None else "—"),
        ("busy workers", str(sum(1 for w in health.workers if w["running"]))),
    ]
    return tile_row("health", shown)


def _limit_row(row: dict[str, Any]) -> list[Any]:
    def cell(name: str) -> Any:
        value, default = row["limits"][name]
        shown = limit_text(value)
        return html.Span([shown, " ", html.Small("default", className="default")]) if default else shown

    return [
        row["tenant_id"],
        f"{row['in_flight']:,}",
        cell("max_in_flight"),
        cell("rate_per_second"),
        cell("rate_burst"),
        cell("max_sweep_backtests"),
    ]


def register(app: Dash, data: PageData) -> None:
    @app.callback(
        Output("health-tiles", "children"),
        Output("health-lag", "figure"),
        Output("health-partitions", "children"),
        Output("health-workers", "children"),
        Output("health-errors", "children"),
        Output("health-limits", "children"),
        Input("health-refresh", "n_intervals"),
    )
    def refresh(_: int | None) -> tuple[Any, ...]:
        health = data.health(viewer_scope())
        partitions = health.lag.partitions if health.lag else []
        lag_figure = (
            figures.partition_lag([{"partition": p.partition, "lag": p.lag} for p in partitions])
            if health.lag
            else figures.empty(f"lag unavailable: {health.lag_error}"[:120])
        )
        partition_rows = [
            [
                p.partition,
                f"{p.end_offset:,}",
                f"{p.checkpoint:,}",
                f"{p.lag:,}",
                f"{p.last_event_at.astimezone(UTC):%H:%M:%S}" if p.last_event_at else "—",
                f"{p.events_per_second:,.1f}",
            ]
            for p in partitions
        ]
        workers = [
            [w["host"], w["process_id"], w["running"], w["started"], f"{w['last_started'].astimezone(UTC):%H:%M:%S}"]
            for w in health.workers
        ]
        errors = [
            [
                dcc.Link(str(e["id"])[:8], href=f"/jobs/{e['id']}"),
                e["job_type"],
                e["status"],
                e["error_type"] or "",
                (e["error_message"] or "")[:120],
                f"{e['updated_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            ]
            for e in health.recent_errors
        ]
        return (
            _tiles(health),
            lag_figure,
            _table(
                ["partition", "log end", "projected to", "lag", "last event", "events/s"],
                partition_rows,
                "no partitions",
            ),
            _table(["host", "pid", "running", "started", "last start"], workers, "no job started in 15 minutes"),
            _table(["job", "type", "status", "error", "message", "at (UTC)"], errors, "no errors"),
            _table(
                ["tenant", "in flight", "of at most", "webhooks/s", "burst", "sweep backtests"],
                [_limit_row(row) for row in health.tenant_limits],
                "no registered tenants",
            ),
        )

    clientside(
        app,
        "function(_) { return window.dash_clientside.zixly.stopWatching(); }",
        Output("health-live-note", "children"),
        Input("health-refresh", "id"),
    )
