"""The sweep explorer: a heatmap over two parameters of one strategy and ticker that fills in while the sweep runs,
the ranking, the equity curve of a best cell against buying and holding, and in-sample against out-of-sample."""

import uuid
from typing import Any
from urllib.parse import urlencode

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import figures
from dashboard.authorization import viewer_scope
from dashboard.formats import number, percent
from dashboard.page_data import SWEEP_METRICS, PageData, RankCorrelation
from dashboard.pages.clientside import clientside
from schemas.access import Permission
from schemas.sweeps import WalkForward

PERMISSION = Permission.READ_JOBS

METRICS = SWEEP_METRICS
RANKING_ROWS = 200
RANKING_COLUMNS = [
    {"field": "parameters_key", "headerName": "parameters", "minWidth": 160},
    *(
        {"field": name, "valueFormatter": {"function": "params.value == null ? '' : d3.format('.3f')(params.value)"}}
        for name in ("score", "sharpe", "total_return", "max_drawdown", "win_rate")
    ),
    {"field": "trades", "maxWidth": 100},
]


def layout(query: dict[str, list[str]], data: PageData) -> html.Section:
    sweeps = data.sweeps(viewer_scope())
    options = [
        {
            "label": f"{s['created_at']:%Y-%m-%d %H:%M} · {s['tenant_id']} · {s['status']} · {str(s['id'])[:8]}",
            "value": str(s["id"]),
        }
        for s in sweeps
    ]
    chosen = query.get("job", [options[0]["value"] if options else None])[0]

    def picker(label: str, component: Any) -> html.Div:
        return html.Div([html.Label(label, htmlFor=component.id), component])

    return html.Section(
        [
            html.H1("Sweep explorer"),
            html.Div(
                [
                    picker(
                        "sweep",
                        dcc.Dropdown(options, chosen, id="sweep-job", clearable=False, placeholder="no sweeps yet"),
                    ),
                    picker("ticker", dcc.Dropdown(id="sweep-ticker", clearable=False)),
                    picker("strategy", dcc.Dropdown(id="sweep-strategy", clearable=False)),
                    picker("x axis", dcc.Dropdown(id="sweep-x", clearable=False)),
                    picker("y axis", dcc.Dropdown(id="sweep-y", clearable=False)),
                    picker("metric", dcc.Dropdown(list(METRICS), "score", id="sweep-metric", clearable=False)),
                    picker("ranked on", dcc.Dropdown(id="sweep-fold", clearable=False)),
                    picker(
                        "compare with",
                        dcc.Dropdown(options, None, id="sweep-compare", placeholder="another sweep (optional)"),
                    ),
                ],
                className="filters",
            ),
            html.P(id="sweep-progress", className="muted"),
            html.P(id="sweep-compare-summary"),
            dcc.Store(id="sweep-live"),
            html.Span(id="sweep-live-note", hidden=True),
            html.Div(
                [dcc.Graph(id="sweep-heatmap", config={"displaylogo": False, "responsive": True})], className="card"
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H2("Ranking"),
                            dag.AgGrid(
                                id="sweep-ranking",
                                columnDefs=RANKING_COLUMNS,
                                rowData=[],
                                columnSize="responsiveSizeToFit",
                                defaultColDef={"resizable": True, "sortable": True},
                                className="ag-theme-alpine",
                                style={"height": "420px", "width": "100%"},
                            ),
                        ],
                        className="card",
                    ),
                    html.Div(
                        [
                            html.H2("Equity curve of a best cell"),
                            dcc.Dropdown(
                                id="sweep-equity-cell", placeholder="a best cell (curves are stored for these)"
                            ),
                            dcc.Graph(id="sweep-equity", config={"displaylogo": False, "responsive": True}),
                        ],
                        className="card",
                    ),
                ],
                className="cards",
            ),
            html.Div([dcc.Graph(id="sweep-oos", config={"displaylogo": False, "responsive": True})], className="card"),
            html.Div(
                [
                    html.H2("Walk-forward"),
                    html.Div(id="sweep-walk-forward-summary"),
                    dcc.Graph(id="sweep-folds", config={"displaylogo": False, "responsive": True}),
                    dcc.Graph(id="sweep-walk-forward-equity", config={"displaylogo": False, "responsive": True}),
                    html.Div(id="sweep-folds-table"),
                ],
                id="sweep-walk-forward",
                className="card",
            ),
        ]
    )


def _strategies(job: dict[str, Any]) -> dict[str, list[str]]:
    return {grid["type"]: list(grid["parameters"]) for grid in job["parameters"].get("strategies", [])}


def _strategy_options(job: dict[str, Any]) -> list[dict[str, str]]:
    """Each strategy of the sweep, labelled with the signal it ran with (a sweep older than the choice ran
    ``regime``), so that two sweeps' heatmaps are not compared without seeing which rule made each."""
    return [
        {"label": f"{grid['type']} ({grid.get('signal', 'regime')})", "value": grid["type"]}
        for grid in job["parameters"].get("strategies", [])
    ]


def register(app: Dash, data: PageData) -> None:
    @app.callback(
        Output("sweep-ticker", "options"),
        Output("sweep-ticker", "value"),
        Output("sweep-strategy", "options"),
        Output("sweep-strategy", "value"),
        Output("url", "search", allow_duplicate=True),
        Input("sweep-job", "value"),
        State("sweep-ticker", "value"),
        State("sweep-strategy", "value"),
        prevent_initial_call="initial_duplicate",
    )
    def choose_sweep(job_id: str | None, ticker: str | None, strategy: str | None) -> tuple[Any, ...]:
        job = data.job_row(viewer_scope(), uuid.UUID(job_id)) if job_id else None
        if job is None:
            return [], None, [], None, no_update
        tickers = list(job["parameters"].get("tickers", []))
        strategies = list(_strategies(job))
        ticker = ticker if ticker in tickers else (tickers[0] if tickers else None)
        strategy = strategy if strategy in strategies else (strategies[0] if strategies else None)
        return tickers, ticker, _strategy_options(job), strategy, "?" + urlencode({"job": job_id})

    @app.callback(
        Output("sweep-fold", "options"),
        Output("sweep-fold", "value"),
        Output("sweep-fold", "disabled"),
        Input("sweep-job", "value"),
        Input("sweep-ticker", "value"),
        Input("sweep-live", "data"),
        State("sweep-fold", "value"),
        State("sweep-fold", "options"),
    )
    def choose_fold(
        job_id: str | None, ticker: str | None, _live: Any, fold: int | None, shown: list[dict[str, Any]] | None
    ) -> tuple[Any, ...]:
        """A walk-forward ranks its grid once per fold: the heatmap and ranking show one fold's training window, the
        latest so far unless another was chosen (its choice is what to trade next). Other sweeps rank once, on 0."""
        scope = viewer_scope()
        job = data.job_row(scope, uuid.UUID(job_id)) if job_id else None
        if job is None or ticker is None or not job["parameters"].get("validation"):
            return [{"label": "the whole sample" if job else "", "value": 0}], 0, True
        windows = _training_windows(job, ticker, data.sweep_folds(scope, uuid.UUID(job_id), ticker))
        if not windows:
            return [{"label": "no fold ranked yet", "value": 0}], 0, True
        options = [{"label": f"fold {index}: {label}", "value": index} for index, label in windows.items()]
        # Following the latest fold while it was shown, as a log's tail is followed; a fold chosen stays.
        latest_shown = max((option["value"] for option in shown or []), default=None)
        return options, fold if fold in windows and fold != latest_shown else max(windows), False

    @app.callback(
        Output("sweep-walk-forward", "hidden"),
        Output("sweep-walk-forward-summary", "children"),
        Output("sweep-folds", "figure"),
        Output("sweep-walk-forward-equity", "figure"),
        Output("sweep-folds-table", "children"),
        Input("sweep-job", "value"),
        Input("sweep-ticker", "value"),
        Input("sweep-strategy", "value"),
        Input("sweep-live", "data"),
    )
    def walk_forward(job_id: str | None, ticker: str | None, strategy: str | None, _live: Any) -> tuple[Any, ...]:
        job = data.job_row(viewer_scope(), uuid.UUID(job_id)) if job_id else None
        if job is None or not job["parameters"].get("validation"):
            return True, None, figures.empty(""), figures.empty(""), None
        report = _walk_forward_report(job, ticker, strategy)
        if report is None:
            note = html.P("walk-forward: ranking the folds' training windows", className="muted")
            waiting = figures.empty("the folds are traded out of sample when the sweep completes", height=300)
            return False, note, waiting, figures.empty(""), None
        try:
            curve = data.walk_forward_curve(job, report["curve_key"])
            equity = figures.equity_curve(
                curve.dates,
                curve.equity,
                curve.buy_and_hold,
                "walk-forward",
                title="Stitched out-of-sample equity against buying and holding",
            )
        except Exception as exc:  # a missing artifact is said on the chart, not as a broken page
            equity = figures.empty(f"curve unavailable: {exc!r}"[:120])
        table = _folds_table(report["folds"], job["result"].get("rank_by", "score"))
        return False, _walk_forward_summary(report), figures.walk_forward_folds(report["folds"]), equity, table

    @app.callback(Output("sweep-equity-cell", "options"), Input("sweep-job", "value"), Input("sweep-live", "data"))
    def best_cells(job_id: str | None, _live: Any) -> list[dict[str, str]]:
        """The cells whose curves the sweep stored, once it has completed."""
        job = data.job_row(viewer_scope(), uuid.UUID(job_id)) if job_id else None
        # The browser names a cell by its place in the job's result; the object key never leaves the server.
        return [
            {"label": f"{c['ticker']} #{c['rank']} {c['strategy_type']} {_key(c['parameters'])}", "value": str(index)}
            for index, c in enumerate(_best_cells(job) if job else [])
            if c.get("equity_curve_key")
        ]

    @app.callback(
        Output("sweep-x", "options"),
        Output("sweep-x", "value"),
        Output("sweep-y", "options"),
        Output("sweep-y", "value"),
        Input("sweep-strategy", "value"),
        State("sweep-job", "value"),
        State("sweep-x", "value"),
        State("sweep-y", "value"),
    )
    def choose_axes(strategy: str | None, job_id: str | None, x: str | None, y: str | None) -> tuple[Any, ...]:
        job = data.job_row(viewer_scope(), uuid.UUID(job_id)) if job_id else None
        names = _strategies(job).get(strategy or "", []) if job else []
        x = x if x in names else (names[0] if names else None)
        y = y if y in names and y != x else next((n for n in names if n != x), x)
        return names, x, names, y

    @app.callback(
        Output("sweep-heatmap", "figure"),
        Output("sweep-ranking", "rowData"),
        Output("sweep-progress", "children"),
        Output("sweep-compare-summary", "children"),
        Input("sweep-job", "value"),
        Input("sweep-ticker", "value"),
        Input("sweep-strategy", "value"),
        Input("sweep-x", "value"),
        Input("sweep-y", "value"),
        Input("sweep-metric", "value"),
        Input("sweep-fold", "value"),
        Input("sweep-compare", "value"),
        Input("sweep-live", "data"),
    )
    def heatmap(
        job_id: str | None,
        ticker: str | None,
        strategy: str | None,
        x: str | None,
        y: str | None,
        metric: str,
        fold: int | None,
        compare: str | None,
        live: dict[str, Any] | None,
    ) -> tuple[Any, ...]:
        if not (job_id and ticker and strategy and x and y):
            return figures.empty("choose a sweep, a ticker and a strategy"), [], "", None
        scope = viewer_scope()
        sweep = uuid.UUID(job_id)
        fold = fold or 0
        # Reduced in Postgres: the best at each point, the first 200, a count; not every backtest of the ticker.
        best = data.sweep_best_by_point(scope, sweep, ticker, strategy, x, y, metric, fold=fold)
        ranking = data.sweep_cells(scope, sweep, ticker, strategy, limit=RANKING_ROWS, fold=fold)
        recorded = data.sweep_cell_count(scope, sweep, ticker, strategy, fold=fold)
        job = live if live and live.get("id") == job_id else data.job_row(scope, sweep)
        progress = f"{job['status']} · {float(job['progress']):.0%} · " if job else ""
        shown = f"{progress}{recorded:,} backtests of {ticker} {strategy} recorded"
        if not compare or compare == job_id:
            return figures.sweep_heatmap(best, x, y, metric), ranking, shown, None
        other = uuid.UUID(compare)
        theirs = data.sweep_best_by_point(scope, other, ticker, strategy, x, y, metric, fold=fold)
        alike = data.sweep_rank_correlation(scope, sweep, other, ticker, strategy, metric, fold=fold)
        name = f"sweep {compare[:8]}"
        return figures.sweep_difference(best, theirs, x, y, metric, name), ranking, shown, _comparison(alike, name)

    @app.callback(
        Output("sweep-oos", "figure"),
        Input("sweep-job", "value"),
        Input("sweep-ticker", "value"),
        Input("sweep-metric", "value"),
        Input("sweep-live", "data"),
    )
    def out_of_sample(job_id: str | None, ticker: str | None, metric: str, _live: Any) -> Any:
        job = data.job_row(viewer_scope(), uuid.UUID(job_id)) if job_id else None
        if job is None or job["result"] is None:
            return figures.empty("the out-of-sample tests run when the sweep completes", height=300)
        if job["parameters"].get("validation"):
            return figures.empty("a walk-forward is tested out of sample fold by fold: see Walk-forward", height=300)
        ranked_by = metric if metric != "score" else job["result"].get("rank_by", "sharpe")
        return figures.in_vs_out_of_sample([c for c in _best_cells(job) if c["ticker"] == ticker], ranked_by)

    @app.callback(Output("sweep-equity", "figure"), Input("sweep-equity-cell", "value"), State("sweep-job", "value"))
    def equity(cell: str | None, job_id: str | None) -> Any:
        if not cell or not job_id:
            return figures.empty("choose one of the best cells")
        job = data.job_row(viewer_scope(), uuid.UUID(job_id))
        cells = _best_cells(job) if job else []
        if job is None or not cell.isdigit() or int(cell) >= len(cells) or not cells[int(cell)].get("equity_curve_key"):
            return figures.empty("no such cell in this sweep")
        chosen = cells[int(cell)]
        key = chosen["equity_curve_key"]
        try:
            curve = data.equity_curve(job, key, chosen["ticker"])
        except Exception as exc:  # a missing artifact is said on the chart, not as a broken page
            return figures.empty(f"curve unavailable: {exc!r}"[:120])
        return figures.equity_curve(curve.dates, curve.equity, curve.buy_and_hold, key.rsplit("/", 1)[-1])

    clientside(
        app,
        "function(jobId) { return window.dash_clientside.zixly.watchJob(jobId, 'sweep-live'); }",
        Output("sweep-live-note", "children"),
        Input("sweep-job", "value"),
    )


def _best_cells(job: dict[str, Any]) -> list[dict[str, Any]]:
    summary = job["result"] or {}
    return [
        {**cell, "ticker": entry["ticker"]} for entry in summary.get("tickers", []) for cell in entry.get("best", [])
    ]


def _comparison(alike: RankCorrelation, other: str) -> Any:
    if alike.cells == 0:
        return html.Span(
            f"{other} has no cell of this ticker and strategy in common with this sweep", id="sweep-rank-correlation"
        )
    correlation = "undefined" if alike.spearman is None else f"{alike.spearman:.3f}"
    return html.Span(
        [
            "heatmap: this sweep minus ",
            html.Strong(other),
            f"; rank correlation (Spearman) over their {alike.cells:,} common cells: ",
            html.Strong(correlation),
        ],
        id="sweep-rank-correlation",
    )


def _training_windows(job: dict[str, Any], ticker: str, recorded: list[int]) -> dict[int, str]:
    """A walk-forward's training windows on ``ticker`` by fold: every fold, as dates, once the sweep has reported
    them; while it runs, the folds with rankings recorded, as bar ranges."""
    for entry in (job["result"] or {}).get("tickers", []):
        if entry["ticker"] == ticker and entry.get("walk_forward"):
            folds = entry["walk_forward"][0]["folds"]
            return {fold["fold"]: f"trained {fold['train']['first']} → {fold['train']['last']}" for fold in folds}
    plan = WalkForward.model_validate(job["parameters"]["validation"]["walk_forward"])
    return {
        fold.index: f"trained on bars {fold.train_start:,}-{fold.train_stop - 1:,}"
        for fold in (plan.fold(index) for index in recorded)
    }


def _walk_forward_report(job: dict[str, Any], ticker: str | None, strategy: str | None) -> dict[str, Any] | None:
    for entry in (job["result"] or {}).get("tickers", []):
        if entry["ticker"] == ticker:
            return next((r for r in entry.get("walk_forward", []) if r["strategy_type"] == strategy), None)
    return None


def _walk_forward_summary(report: dict[str, Any]) -> Any:
    oos, held = report["out_of_sample"], report["buy_and_hold"]
    folds = len(report["folds"])
    return html.P(
        [
            html.Strong(f"{folds} folds, stitched out of sample: "),
            f"total return {percent(oos['total_return'])} (buy and hold {percent(held['total_return'])}), "
            f"CAGR {percent(oos['cagr'])} against {percent(report['in_sample_cagr'])} in sample, ",
            "walk-forward efficiency ",
            html.Span(
                number(report["efficiency"]) if report["efficiency"] is not None else "undefined (no in-sample gain)",
                id="sweep-walk-forward-efficiency",
            ),
            f", Sharpe {number(oos['sharpe'])}, max drawdown {percent(oos['max_drawdown'])}; "
            f"the chosen parameters changed {report['parameter_changes']} time(s) in {max(folds - 1, 0)} step(s).",
        ]
    )


def _folds_table(folds: list[dict[str, Any]], rank_by: str) -> Any:
    header = ["fold", "trained on", "tested on", "chosen", f"{rank_by} in sample", f"{rank_by} out of sample"]
    return html.Table(
        [html.Tr([html.Th(name) for name in header])]
        + [
            html.Tr(
                [
                    html.Td(str(fold["fold"])),
                    html.Td(f"{fold['train']['first']} → {fold['train']['last']}"),
                    html.Td(f"{fold['test']['first']} → {fold['test']['last']}"),
                    html.Td(_key(fold["parameters"])),
                    html.Td(number(fold["in_sample_score"])),
                    html.Td(number(fold["out_of_sample_score"])),
                ],
                className="fold-row",
            )
            for fold in folds
        ],
        className="plain",
    )


def _key(parameters: dict[str, Any]) -> str:
    return ",".join(f"{name}={value:g}" for name, value in sorted(parameters.items()))
