"""The overview: jobs by status, throughput, success rate, duration percentiles by type, retries, dead letters and
the commonest errors over a chosen time range. Shared aggregates, refreshed every few seconds for every screen."""

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, dcc, html

from dashboard import figures
from dashboard.authorization import viewer_scope
from dashboard.page_data import Overview, PageData
from dashboard.pages.clientside import clientside
from dashboard.pages.tiles import tile_row
from schemas.access import Permission

PERMISSION = Permission.READ_JOBS

# range name: (length, throughput bucket). The last hour is counted exactly, minute by minute; longer ranges come
# from the hourly rollups, in whole hours.
RANGES = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
REFRESH_MS = 5_000


def layout(query: dict[str, list[str]]) -> html.Section:
    chosen = query.get("range", ["24h"])[0]
    return html.Section(
        [
            html.H1("Overview"),
            html.Div(
                [
                    html.Label("time range", htmlFor="overview-range"),
                    dcc.RadioItems(
                        [{"label": f" last {name}", "value": name} for name in RANGES],
                        chosen if chosen in RANGES else "24h",
                        id="overview-range",
                        inline=True,
                        inputStyle={"marginLeft": "0.75rem"},
                    ),
                ]
            ),
            html.Div(id="overview-tiles", className="tiles"),
            html.Div(
                [
                    html.Div(
                        dcc.Graph(id="overview-status", config={"displaylogo": False, "responsive": True}),
                        className="card",
                    ),
                    html.Div(
                        dcc.Graph(id="overview-throughput", config={"displaylogo": False, "responsive": True}),
                        className="card",
                    ),
                    html.Div(
                        dcc.Graph(id="overview-durations", config={"displaylogo": False, "responsive": True}),
                        className="card",
                    ),
                    html.Div([html.H2("Commonest errors"), html.Div(id="overview-errors")], className="card"),
                ],
                className="cards",
            ),
            dcc.Interval(id="overview-refresh", interval=REFRESH_MS),
            html.Span(id="overview-live-note", hidden=True),
        ]
    )


def tiles(overview: Overview) -> list[html.Div]:
    counts = {row["status"]: row["jobs"] for row in overview.by_status}
    total = sum(counts.values())
    finished = counts.get("COMPLETED", 0) + counts.get("FAILED", 0) + counts.get("DEAD_LETTERED", 0)
    success = f"{counts.get('COMPLETED', 0) / finished:.1%}" if finished else "—"
    retried = sum(row["retried"] for row in overview.by_status)
    in_flight = sum(counts.get(s, 0) for s in ("QUEUED", "RUNNING", "RETRYING"))
    shown = [
        ("jobs", f"{total:,}"),
        ("in flight", f"{in_flight:,}"),
        ("completed", f"{counts.get('COMPLETED', 0):,}"),
        ("success rate", success),
        ("failed", f"{counts.get('FAILED', 0):,}"),
        ("dead letters", f"{counts.get('DEAD_LETTERED', 0):,}"),
        ("retried", f"{retried:,}"),
    ]
    return tile_row("tile", shown)


def _last_seen(row: dict[str, Any]) -> str:
    # The rollups know the hour, not the moment. Postgres answers in its session's time zone; the column says UTC.
    seen = row["last_seen"].astimezone(UTC)
    return f"before {seen:%Y-%m-%d %H:%M}" if row.get("to_the_hour") else f"{seen:%Y-%m-%d %H:%M:%S}"


def _errors(overview: Overview) -> Any:
    if not overview.top_errors:
        return html.P("no failures in this time range", className="muted")
    return html.Table(
        [html.Tr([html.Th("error"), html.Th("jobs"), html.Th("last seen (UTC)")])]
        + [
            html.Tr(
                [
                    html.Td(
                        dcc.Link(
                            row["error_type"] or "(none)",
                            href=f"/jobs?status=FAILED&status=DEAD_LETTERED"
                            f"&{urlencode({'q': row['error_type'] or ''})}",
                        )
                    ),
                    html.Td(f"{row['jobs']:,}"),
                    html.Td(_last_seen(row)),
                ]
            )
            for row in overview.top_errors
        ],
        className="plain",
    )


def register(app: Dash, data: PageData) -> None:
    @app.callback(
        Output("overview-tiles", "children"),
        Output("overview-status", "figure"),
        Output("overview-throughput", "figure"),
        Output("overview-durations", "figure"),
        Output("overview-errors", "children"),
        Output("url", "search", allow_duplicate=True),
        Input("overview-range", "value"),
        Input("overview-refresh", "n_intervals"),
        prevent_initial_call="initial_duplicate",
    )
    def refresh(range_name: str, _: int | None) -> tuple[Any, ...]:
        length, bucket = RANGES.get(range_name, RANGES["24h"])
        until = datetime.now(UTC)
        overview = data.overview(viewer_scope(), until - length, until, bucket, rollups=range_name != "1h")
        throughput = figures.throughput(overview.throughput, until - length, until, bucket)
        return (
            tiles(overview),
            figures.jobs_by_status(overview.by_status),
            throughput,
            figures.durations(overview.by_type),
            _errors(overview),
            f"?range={range_name}",
        )

    clientside(
        app,
        "function(_) { return window.dash_clientside.zixly.stopWatching(); }",
        Output("overview-live-note", "children"),
        Input("overview-range", "id"),
    )
