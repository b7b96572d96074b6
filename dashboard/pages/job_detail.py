"""One job: what it was asked, where it stands, its attempts and errors, its timeline, its artifacts, and its state
at any event of its history (time travel, with the projector's own fold). Redrawn when the job changes."""

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dashboard import figures
from dashboard.authorization import scope_of, viewer
from dashboard.formats import number, percent
from dashboard.page_data import PageData
from dashboard.pages import job_actions
from dashboard.pages.clientside import clientside
from identity.audit import AuditEntry, record_sync
from read_model.time_travel import AsOf, event_from_timeline, fold_job
from schemas.access import Permission, Principal

PERMISSION = Permission.READ_JOBS

_SWEEP_ARTIFACTS = (("summary", "summary"), ("result_parts", "results"), ("equity_curves", "equity curve"))


def layout(job_text: str, principal: Principal) -> html.Section:
    try:
        job_id = str(uuid.UUID(job_text))
    except ValueError:
        return html.Section(
            [html.H1("Not a job id"), html.P(f"{job_text!r} is not a job id."), dcc.Link("All jobs", href="/jobs")]
        )
    return html.Section(
        [
            dcc.Store(id="job-id", data=job_id),
            dcc.Store(id="job-live"),
            html.Span(id="job-live-note", hidden=True),
            html.Div(id="job-header"),
            job_actions.card(principal),
            html.Div(
                [
                    html.Div([html.H2("Status"), html.Div(id="job-facts")], className="card"),
                    html.Div([html.H2("Parameters"), html.Pre(id="job-parameters")], className="card"),
                ],
                className="cards",
            ),
            html.Div(id="job-error"),
            html.Div(
                [dcc.Graph(id="job-timeline", config={"displaylogo": False, "responsive": True})], className="card"
            ),
            html.Div(
                [
                    html.Div([html.H2("Result"), html.Div(id="job-result")], className="card"),
                    html.Div([html.H2("Artifacts"), html.Div(id="job-artifacts")], className="card"),
                ],
                className="cards",
            ),
            html.Div(
                [
                    html.H2("Time travel"),
                    html.P(
                        "The job's state after the chosen event, folded from its events as the projector folds them.",
                        className="muted",
                    ),
                    dcc.Slider(
                        id="job-as-of",
                        min=0,
                        max=0,
                        step=1,
                        value=0,
                        marks=None,
                        tooltip={"placement": "bottom", "always_visible": False},
                    ),
                    html.Div(id="job-as-of-state"),
                ],
                className="card",
            ),
        ]
    )


def _facts(job: dict[str, Any]) -> html.Dl:
    items = [
        ("type", job["job_type"]),
        ("tenant", job["tenant_id"]),
        ("attempts", job["attempts"]),
        ("created", job["created_at"]),
        ("started", job["started_at"]),
        ("finished", job["completed_at"]),
        ("updated", job["updated_at"]),
        ("correlation id", job["correlation_id"]),
        ("worker", _worker(job["metrics"])),
        ("duration", _duration(job["metrics"])),
        ("message", job["progress_message"]),
    ]
    children: list[Any] = []
    for name, value in items:
        if value not in (None, ""):
            shown = (
                value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if isinstance(value, datetime) else value
            )
            children += [html.Dt(name), html.Dd(str(shown))]
    return html.Dl(children, className="facts")


def _worker(metrics: dict[str, Any]) -> str | None:
    worker = metrics.get("worker")
    return f"{worker['host']} (pid {worker['process_id']})" if worker else None


def _duration(metrics: dict[str, Any]) -> str | None:
    duration = metrics.get("duration_ms")
    return f"{duration / 1000:.3f} s" if duration is not None else None


def _error(job: dict[str, Any], stack_traces: bool) -> Any:
    attempts = job["metrics"].get("attempt_errors") or []
    if not job["error_type"] and not attempts:
        return None
    children: list[Any] = [html.H2("Errors")]
    if job["error_type"]:
        children.append(html.P([html.Strong(job["error_type"]), ": ", job["error_message"] or ""]))
        if stack_traces:
            children.append(html.Pre(job["error_detail"] or "(no stack trace recorded)", id="job-stack-trace"))
    if attempts:
        children.append(
            html.Table(
                [html.Tr([html.Th("attempt"), html.Th("error"), html.Th("message")])]
                + [
                    html.Tr(
                        [
                            html.Td(str(e.get("attempt", i + 1))),
                            html.Td(e.get("error_type", "")),
                            html.Td(e.get("message", "")),
                        ]
                    )
                    for i, e in enumerate(attempts)
                ],
                className="plain",
            )
        )
    return html.Div(children, className="card")


def _result(job: dict[str, Any]) -> Any:
    result = job["result"]
    if result is None:
        return html.P("no result yet", className="muted")
    if job["job_type"] == "trading.sweep":
        best = [(ticker["ticker"], ticker["best"][0]) for ticker in result.get("tickers", []) if ticker.get("best")]
        return html.Div(
            [
                html.P(
                    f"{result.get('backtests', 0):,} backtests in {result.get('chunks', 0)} chunks, "
                    f"{result.get('elapsed_seconds', 0):.1f} s; ranked by {result.get('rank_by')}."
                ),
                html.Table(
                    [
                        html.Tr(
                            [
                                html.Th("ticker"),
                                html.Th("best strategy"),
                                html.Th("parameters"),
                                html.Th("score"),
                                html.Th("neighbours' mean"),
                                html.Th("neighbours' worst"),
                            ]
                        )
                    ]
                    + [
                        html.Tr(
                            [
                                html.Td(ticker),
                                html.Td(cell["strategy_type"]),
                                html.Td(json.dumps(cell["parameters"])),
                                html.Td(number(cell["score"])),
                                html.Td(number((cell.get("neighbourhood") or {}).get("mean"))),
                                html.Td(number((cell.get("neighbourhood") or {}).get("worst"))),
                            ],
                            className="best-cell",
                        )
                        for ticker, cell in best
                    ],
                    className="plain",
                )
                if best
                else None,
                _walk_forwards(result),
                dcc.Link("Explore the sweep →", href=f"/sweeps?job={job['id']}"),
            ]
        )
    return html.Pre(json.dumps(result, indent=2, sort_keys=True, default=str))


def _walk_forwards(result: dict[str, Any]) -> Any:
    """Each ticker and strategy's stitched out-of-sample figures, for a walk-forward sweep."""
    reports = [
        (entry["ticker"], report) for entry in result.get("tickers", []) for report in entry.get("walk_forward", [])
    ]
    if not reports:
        return None
    header = ["ticker", "strategy", "folds", "out-of-sample return", "buy and hold", "efficiency", "choice changes"]
    return html.Table(
        [html.Tr([html.Th(name) for name in header])]
        + [
            html.Tr(
                [
                    html.Td(ticker),
                    html.Td(report["strategy_type"]),
                    html.Td(str(len(report["folds"]))),
                    html.Td(percent(report["out_of_sample"]["total_return"])),
                    html.Td(percent(report["buy_and_hold"]["total_return"])),
                    html.Td(number(report["efficiency"])),
                    html.Td(str(report["parameter_changes"])),
                ],
                className="walk-forward-row",
            )
            for ticker, report in reports
        ],
        className="plain",
    )


def _artifacts(job: dict[str, Any], data: PageData, caller: Principal) -> Any:
    artifacts = job["result"].get("artifacts") if isinstance(job["result"], dict) else None
    if not artifacts:
        return html.P("no artifacts", className="muted")
    if not caller.may(Permission.READ_ARTIFACTS):
        return html.P(f"artifacts are for operators; a {caller.role} sees the result above", className="muted")
    links: list[Any] = []
    keys = []
    try:
        for field, label in _SWEEP_ARTIFACTS:
            stored = artifacts.get(field) or []
            for key in [stored] if isinstance(stored, str) else stored:
                url = data.artifact_url(job, key)
                keys.append(key)
                links.append(
                    html.Li(
                        html.A(
                            f"{label}: {key.rsplit('/', 1)[-1]}",
                            href=url,
                            className="artifact-link",
                            target="_blank",
                            rel="noopener",
                        )
                    )
                )
    except Exception as exc:  # the object store's answer belongs on screen, the rest of the page still shows
        return html.P(f"object store unavailable: {exc!r}"[:300], className="muted")
    record_sync(
        data.engine, AuditEntry(caller.actor, "artifact.links", job["tenant_id"], str(job["id"]), detail={"keys": keys})
    )
    return html.Div([html.P("Links are presigned and expire in 15 minutes.", className="muted"), html.Ul(links)])


def register(app: Dash, data: PageData) -> None:
    @app.callback(
        Output("job-header", "children"),
        Output("job-facts", "children"),
        Output("job-parameters", "children"),
        Output("job-error", "children"),
        Output("job-result", "children"),
        Output("job-artifacts", "children"),
        Output("job-timeline", "figure"),
        Output("job-as-of", "max"),
        Output("job-as-of", "value"),
        Output("job-as-of", "marks"),
        Input("job-id", "data"),
        Input("job-live", "data"),
    )
    def show(job_id: str, _live: Any) -> tuple[Any, ...]:
        caller = viewer()
        job = data.job(scope_of(caller), uuid.UUID(job_id))
        if job is None:
            missing = html.Div([html.H1("No such job"), html.P(f"No job {job_id} in the read model (yet).")])
            return missing, None, None, None, None, None, figures.empty("no events"), 0, 0, None
        status = job["status"]
        header = html.Div(
            [
                html.H1(
                    [f"{job['job_type']} ", html.Span(status, id="job-status", className=f"badge status-{status}")]
                ),
                html.P(job_id, className="muted"),
                html.Progress(value=str(job["progress"]), max="1", id="job-progress"),
            ]
        )
        events, total = job["events"], job["events_total"]
        last = max(total - 1, 0)
        marks = {i: {"label": str(i + 1)} for i in range(total)} if total <= 30 else None
        return (
            header,
            _facts(job),
            json.dumps(job["parameters"], indent=2, sort_keys=True),
            _error(job, caller.may(Permission.READ_STACK_TRACES)),
            _result(job),
            _artifacts(job, data, caller),
            figures.job_timeline(events, datetime.now(UTC), job["event_types"], job["events_omitted"]),
            last,
            last,
            marks,
        )

    @app.callback(
        Output("job-as-of-state", "children"),
        Input("job-as-of", "value"),
        State("job-id", "data"),
        State("job-as-of", "max"),
    )
    def as_of(index: int | None, job_id: str, last: int | None) -> Any:
        # Only the events up to the chosen one: a sweep's whole history is thousands of them.
        events = data.job_history(scope_of(viewer()), uuid.UUID(job_id), max(index or 0, 0))
        if not events:
            return None
        chosen = events[-1]
        total = max(last or 0, len(events) - 1) + 1
        history = [(event_from_timeline(row), row["log_partition"], row["log_offset"]) for row in events]
        state = fold_job(history, AsOf(offset=chosen["log_offset"]))
        shown = dataclasses.asdict(state) if state else {}
        keep = (
            "status",
            "attempts",
            "progress",
            "progress_message",
            "error_type",
            "error_message",
            "started_at",
            "completed_at",
            "updated_at",
        )
        return html.Div(
            [
                html.P(
                    [
                        html.Strong(f"after event {len(events)} of {total}: {chosen['event_type']}"),
                        f" (partition {chosen['log_partition']}, offset {chosen['log_offset']})",
                    ],
                    id="job-as-of-label",
                ),
                html.Pre(
                    json.dumps(
                        {name: shown.get(name) for name in keep}
                        | {"result": "(recorded)" if shown.get("result") else None},
                        indent=2,
                        default=str,
                    )
                ),
            ]
        )

    clientside(
        app,
        "function(jobId) { return window.dash_clientside.zixly.watchJob(jobId, 'job-live'); }",
        Output("job-live-note", "children"),
        Input("job-id", "data"),
    )
