"""The job list: filters in the URL (a view can be shared), keyset pages from the server, rows updated live.

The filters are the read-only API's (``JobFilter``), so the page and ``GET /api/pipelines/jobs`` always agree. The
browser keeps a stack of cursors for "newer"; "older" follows the page's ``next_cursor``.
"""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, ctx, dcc, html

from dashboard.authorization import viewer_scope
from dashboard.job_queries import JobFilter, SortField
from dashboard.page_data import PageData
from dashboard.pages.clientside import clientside
from schemas.access import Permission
from schemas.job_status import JobStatus

PERMISSION = Permission.READ_JOBS

PAGE_SIZE = 50
SORTS = {
    "created_at desc": "newest first",
    "created_at asc": "oldest first",
    "updated_at desc": "recently changed first",
    "updated_at asc": "least recently changed first",
}
FILTER_IDS = ("jobs-status", "jobs-type", "jobs-tenant", "jobs-from", "jobs-to", "jobs-q", "jobs-sort")

COLUMNS = [
    {"field": "link", "headerName": "job", "cellRenderer": "markdown", "minWidth": 100, "pinned": "left"},
    {"field": "status", "cellClass": {"function": "'status status-' + params.value"}, "minWidth": 120},
    {"field": "job_type", "headerName": "type", "minWidth": 110},
    {"field": "tenant_id", "headerName": "tenant", "minWidth": 100},
    {
        "field": "progress",
        "valueFormatter": {"function": "Math.round((params.value || 0) * 100) + '%'"},
        "maxWidth": 110,
    },
    {"field": "attempts", "maxWidth": 100},
    {"field": "created_at", "headerName": "created (UTC)", "minWidth": 170},
    {"field": "updated_at", "headerName": "updated (UTC)", "minWidth": 170},
    {"field": "error_type", "headerName": "error", "minWidth": 140},
    {"field": "progress_message", "headerName": "message", "minWidth": 160},
]


def shown_time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else None


def grid_row(row: dict[str, Any]) -> dict[str, Any]:
    """A job row as the grid shows it; ``assets/zixly_live.js`` gridRow shapes pushed rows the same way."""
    times = {name: shown_time(row.get(name)) for name in ("created_at", "started_at", "completed_at", "updated_at")}
    return {**row, **times, "id": str(row["id"]), "link": f"[{str(row['id'])[:8]}](/jobs/{row['id']})"}


def _first(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    return query.get(name, [default])[0]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _field(label: str, component: Any) -> html.Div:
    return html.Div([html.Label(label, htmlFor=component.id), component])


def layout(query: dict[str, list[str]], data: PageData) -> html.Section:
    statuses = [s for s in query.get("status", []) if s in JobStatus.__members__]
    sort = f"{_first(query, 'sort', 'created_at')} {_first(query, 'order', 'desc')}"
    return html.Section(
        [
            html.H1("Jobs"),
            html.Div(
                [
                    _field(
                        "status",
                        dcc.Dropdown(
                            [s.value for s in JobStatus],
                            statuses,
                            multi=True,
                            id="jobs-status",
                            placeholder="any status",
                        ),
                    ),
                    _field(
                        "type",
                        dcc.Dropdown(
                            data.job_types(viewer_scope()),
                            _first(query, "job_type"),
                            id="jobs-type",
                            placeholder="any type",
                        ),
                    ),
                    _field(
                        "tenant",
                        dcc.Input(
                            id="jobs-tenant",
                            value=_first(query, "tenant_id", ""),
                            debounce=True,
                            placeholder="any tenant",
                        ),
                    ),
                    _field(
                        "created from (UTC)",
                        dcc.Input(
                            id="jobs-from",
                            value=_first(query, "created_from", ""),
                            debounce=True,
                            placeholder="2026-11-30 08:00",
                        ),
                    ),
                    _field(
                        "created before (UTC)",
                        dcc.Input(
                            id="jobs-to",
                            value=_first(query, "created_to", ""),
                            debounce=True,
                            placeholder="2026-11-30 18:00",
                        ),
                    ),
                    _field(
                        "text in parameters, errors or id",
                        dcc.Input(
                            id="jobs-q",
                            value=_first(query, "q", ""),
                            debounce=True,
                            type="search",
                            placeholder="e.g. AAPL or TimeoutError",
                        ),
                    ),
                    _field(
                        "order",
                        dcc.Dropdown(
                            [{"label": label, "value": value} for value, label in SORTS.items()],
                            sort if sort in SORTS else "created_at desc",
                            id="jobs-sort",
                            clearable=False,
                        ),
                    ),
                ],
                className="filters",
            ),
            html.Div(
                [
                    html.Button("← newer", id="jobs-newer", className="button", disabled=True),
                    html.Button("older →", id="jobs-older", className="button", disabled=True),
                    html.Span(id="jobs-page-info", className="muted"),
                ],
                className="pager",
            ),
            dag.AgGrid(
                id="jobs-grid",
                columnDefs=COLUMNS,
                rowData=[],
                getRowId="params.data.id",
                defaultColDef={
                    "sortable": False,
                    "resizable": True,
                    "suppressMovable": True,
                    "enableCellChangeFlash": True,
                },
                columnSize="responsiveSizeToFit",
                dashGridOptions={"domLayout": "autoHeight", "animateRows": False},
                className="ag-theme-alpine",
                style={"width": "100%"},
            ),
            dcc.Store(id="jobs-cursors", data={"stack": [], "current": None, "next": None}),
            dcc.Store(id="jobs-live-config"),
            html.Span(id="jobs-live-note", hidden=True),
        ]
    )


def register(app: Dash, data: PageData) -> None:
    @app.callback(
        Output("jobs-grid", "rowData"),
        Output("jobs-cursors", "data"),
        Output("jobs-newer", "disabled"),
        Output("jobs-older", "disabled"),
        Output("jobs-page-info", "children"),
        Output("url", "search"),
        Output("jobs-live-config", "data"),
        *(Input(name, "value") for name in FILTER_IDS),
        Input("jobs-newer", "n_clicks"),
        Input("jobs-older", "n_clicks"),
        State("jobs-cursors", "data"),
    )
    def page(
        statuses: list[str] | None,
        job_type: str | None,
        tenant: str | None,
        created_from: str | None,
        created_to: str | None,
        text: str | None,
        sort_order: str | None,
        _newer: int | None,
        _older: int | None,
        cursors: dict[str, Any],
    ) -> tuple[Any, ...]:
        field, order = (sort_order or "created_at desc").split()
        sort: SortField = "updated_at" if field == "updated_at" else "created_at"
        where = JobFilter(
            statuses or [],
            job_type or None,
            (tenant or "").strip() or None,
            _parse_time(created_from),
            _parse_time(created_to),
            (text or "").strip() or None,
        )
        stack: list[str | None] = list(cursors.get("stack", []))
        current = cursors.get("current")
        if ctx.triggered_id == "jobs-older" and cursors.get("next"):
            stack.append(current)
            current = cursors["next"]
        elif ctx.triggered_id == "jobs-newer" and stack:
            current = stack.pop()
        else:  # a filter changed (or the page opened): back to the first page
            stack, current = [], None
        rows, next_cursor = data.jobs_page(viewer_scope(), where, sort, order == "desc", PAGE_SIZE, current)
        first_page = current is None
        info = f"page {len(stack) + 1} · {len(rows)} jobs" + ("" if next_cursor else " · last page")
        search = urlencode(
            [("status", s) for s in where.statuses]
            + [
                (name, value)
                for name, value in (
                    ("job_type", where.job_type),
                    ("tenant_id", where.tenant_id),
                    ("created_from", created_from or None),
                    ("created_to", created_to or None),
                    ("q", where.text),
                    ("sort", sort if sort != "created_at" else None),
                    ("order", order if order != "desc" else None),
                )
                if value
            ]
        )
        live = {
            "tenant_id": where.tenant_id,
            "statuses": list(where.statuses),
            "job_type": where.job_type,
            "created_from": where.created_from.isoformat() if where.created_from else None,
            "created_to": where.created_to.isoformat() if where.created_to else None,
            # New jobs appear at the top only where the top is "newest": the first page, newest first, no text filter.
            "live_inserts": first_page and sort == "created_at" and order == "desc" and not where.text,
        }
        return (
            [grid_row(row) for row in rows],
            {"stack": stack, "current": current, "next": next_cursor},
            not stack,
            next_cursor is None,
            info,
            f"?{search}" if search else "",
            live,
        )

    clientside(
        app,
        "function(config) { return window.dash_clientside.zixly.watchJobs(config); }",
        Output("jobs-live-note", "children"),
        Input("jobs-live-config", "data"),
    )
