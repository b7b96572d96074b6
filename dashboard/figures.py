"""The dashboard's charts, built from plain rows: one visual language (colours, fonts, margins) for every page."""

import importlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go

STATUS_COLOURS = {
    "QUEUED": "#8a94a6",
    "RUNNING": "#2f6fde",
    "RETRYING": "#e0a100",
    "COMPLETED": "#1f9d55",
    "FAILED": "#d64545",
    "DEAD_LETTERED": "#7b1f1f",
    "CANCELLED": "#5f6b7a",
}
STATUS_ORDER = list(STATUS_COLOURS)
_EVENT_SYMBOLS = {
    "JobRequested": "circle-open",
    "JobStarted": "triangle-right",
    "JobCompleted": "star",
    "JobFailed": "x",
    "JobRetryScheduled": "hourglass",
    "JobDeadLettered": "x-thin-open",
}


def _styled(figure: go.Figure, title: str | None = None, height: int = 320) -> go.Figure:
    figure.update_layout(
        title=title,
        height=height,
        margin={"l": 48, "r": 16, "t": 40 if title else 16, "b": 40},
        template="plotly_white",
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        legend={"orientation": "h", "y": -0.2},
        uirevision="keep",
    )
    return figure


def warm_up() -> None:
    """Imports pandas before the server takes requests.

    pyarrow imports pandas the first time it reads or writes a Parquet file, and plotly uses pandas when it finds it
    in ``sys.modules``, without importing it: while one callback read a stored curve, others building charts found
    pandas half-imported and failed ("partially initialized module 'pandas'"), on the first page of a fresh server
    (a browser test of the walk-forward page caught it)."""
    importlib.import_module("pandas")


def empty(message: str, height: int = 320) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#5f6b7a"})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _styled(figure, height=height)


def jobs_by_status(rows: Sequence[dict[str, Any]]) -> go.Figure:
    counts = {row["status"]: row["jobs"] for row in rows}
    statuses = [status for status in STATUS_ORDER if counts.get(status)]
    if not statuses:
        return empty("no jobs in this time range")
    figure = go.Figure(
        go.Bar(x=statuses, y=[counts[s] for s in statuses], marker_color=[STATUS_COLOURS[s] for s in statuses])
    )
    return _styled(figure, "Jobs by status")


def throughput(rows: Sequence[dict[str, Any]], since: datetime, until: datetime, bucket: timedelta) -> go.Figure:
    """Jobs created per bucket as bars, each as wide as its bucket over the whole range, and how many of them
    completed or failed as lines over them."""
    if not rows:
        return empty("no jobs in this time range")
    buckets = [r["bucket"] for r in rows]
    width = bucket.total_seconds() * 1000  # a date axis measures bars in milliseconds
    figure = go.Figure(
        go.Bar(
            x=buckets,
            y=[r["created"] for r in rows],
            name="created",
            marker_color="#c9d6f2",
            width=[width] * len(rows),
            offset=0,
        )
    )
    middles = [start + bucket / 2 for start in buckets]
    for name in ("completed", "failed"):
        colour = STATUS_COLOURS["COMPLETED" if name == "completed" else "FAILED"]
        figure.add_trace(
            go.Scatter(x=middles, y=[r[name] for r in rows], name=name, mode="lines+markers", line={"color": colour})
        )
    figure.update_xaxes(range=[since, until])
    return _styled(figure, "Jobs per bucket, by creation time")


def durations(rows: Sequence[dict[str, Any]]) -> go.Figure:
    timed = [row for row in rows if row.get("p50_ms") is not None]
    if not timed:
        return empty("no finished jobs in this time range")
    figure = go.Figure()
    for name, colour in (("p50_ms", "#2f6fde"), ("p95_ms", "#e0a100")):
        figure.add_trace(
            go.Bar(x=[r["job_type"] for r in timed], y=[r[name] for r in timed], name=name[:3], marker_color=colour)
        )
    figure.update_layout(barmode="group", yaxis_title="ms")
    return _styled(figure, "Duration percentiles by job type")


def job_timeline(
    events: Sequence[dict[str, Any]], now: datetime, kinds: Sequence[dict[str, Any]] = (), omitted: int = 0
) -> go.Figure:
    """Attempts as bars (start to the event that ended them), every event as a marker on its own lane. A long
    timeline comes as its two ends (``omitted`` events between them): each lane then also spans its type's first to
    last event, with their count, so the middle is summarised rather than drawn."""
    if not events:
        return empty("no events", height=260)
    figure = go.Figure()
    if omitted:
        figure.add_trace(
            go.Scatter(
                x=[moment for kind in kinds for moment in (kind["first_at"], kind["last_at"], None)],
                y=[lane for kind in kinds for lane in (kind["event_type"],) * 3],
                mode="lines",
                name="span",
                line={"color": "#9aa5b1", "width": 6},
                showlegend=False,
                hoverinfo="skip",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=[kind["last_at"] for kind in kinds],
                y=[kind["event_type"] for kind in kinds],
                mode="text",
                text=[f"  {kind['count']:,} events" for kind in kinds],
                textposition="middle right",
                showlegend=False,
                hoverinfo="skip",
            )
        )
    attempt_start: datetime | None = None
    attempt = 0
    for event in events:
        kind, at = event["event_type"], event["occurred_at"]
        if kind == "JobStarted":
            attempt_start, attempt = at, attempt + 1
        elif attempt_start is not None and kind in (
            "JobCompleted",
            "JobFailed",
            "JobRetryScheduled",
            "JobDeadLettered",
            "JobCancelled",
        ):
            _attempt_bar(figure, attempt, attempt_start, at, kind)
            attempt_start = None
    if attempt_start is not None:
        _attempt_bar(figure, attempt, attempt_start, now, "running")
    figure.add_trace(
        go.Scatter(
            x=[e["occurred_at"] for e in events],
            y=[e["event_type"] for e in events],
            mode="markers",
            marker={
                "size": 11,
                "symbol": [_EVENT_SYMBOLS.get(e["event_type"], "diamond") for e in events],
                "color": "#1d2633",
            },
            customdata=[[e["log_partition"], e["log_offset"]] for e in events],
            name="events",
            hovertemplate="%{y}<br>%{x}<br>partition %{customdata[0]}, offset %{customdata[1]}<extra></extra>",
        )
    )
    lanes = list(dict.fromkeys([*(e["event_type"] for e in events), *(kind["event_type"] for kind in kinds)]))
    figure.update_yaxes(categoryorder="array", categoryarray=lanes)
    title = f"Timeline: {len(events) + omitted:,} events, the first and last drawn" if omitted else "Timeline"
    return _styled(figure, title, height=max(220, 60 + 28 * len(lanes)))


def _attempt_bar(figure: go.Figure, attempt: int, start: datetime, end: datetime, outcome: str) -> None:
    colour = {"JobCompleted": STATUS_COLOURS["COMPLETED"], "running": STATUS_COLOURS["RUNNING"]}.get(
        outcome, STATUS_COLOURS["FAILED"]
    )
    figure.add_trace(
        go.Scatter(
            x=[start, end],
            y=[f"attempt {attempt}"] * 2,
            mode="lines",
            name=f"attempt {attempt}",
            line={"color": colour, "width": 14},
            hovertemplate=f"attempt {attempt}: {outcome}<br>%{{x}}<extra></extra>",
            showlegend=False,
        )
    )


def _best_at_points(
    cells: Iterable[dict[str, Any]], x: str, y: str, metric: str
) -> dict[tuple[Any, Any], tuple[float, str]]:
    """The best ``metric`` at each (x, y) and the key of the backtest that has it."""
    best: dict[tuple[Any, Any], tuple[float, str]] = {}
    for cell in cells:
        parameters, value = cell["parameters"], cell.get(metric)
        if x not in parameters or y not in parameters or value is None:
            continue
        point = (parameters[x], parameters[y])
        if point not in best or value > best[point][0]:
            best[point] = (value, cell["parameters_key"])
    return best


def _heatmap(
    values: dict[tuple[Any, Any], tuple[float, str]], x: str, y: str, label: str, title: str, zmid: float | None
) -> go.Figure:
    xs = sorted({p[0] for p in values})
    ys = sorted({p[1] for p in values})
    z: list[list[float | None]] = [[values[(i, j)][0] if (i, j) in values else None for i in xs] for j in ys]
    keys = [[values[(i, j)][1] if (i, j) in values else "" for i in xs] for j in ys]
    figure = go.Figure(
        go.Heatmap(
            x=xs,
            y=ys,
            z=z,
            customdata=keys,
            colorscale="RdYlGn",
            zmid=zmid,
            colorbar={"title": label},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{label}=%{{z:.3f}}<br>%{{customdata}}<extra></extra>",
        )
    )
    figure.update_layout(xaxis_title=x, yaxis_title=y)
    return _styled(figure, title, height=420)


def sweep_heatmap(cells: Iterable[dict[str, Any]], x: str, y: str, metric: str) -> go.Figure:
    """The best ``metric`` at each (x, y), over every value of the other parameters."""
    best = _best_at_points(cells, x, y, metric)
    if not best:
        return empty("no results yet for this ticker and strategy")
    zmid = 0 if metric != "max_drawdown" else None
    return _heatmap(best, x, y, metric, f"Best {metric} by {x} and {y}", zmid)


def sweep_difference(
    cells: Iterable[dict[str, Any]],
    other_cells: Iterable[dict[str, Any]],
    x: str,
    y: str,
    metric: str,
    other: str,
) -> go.Figure:
    """This sweep's best ``metric`` at each (x, y) minus the other sweep's there, where both have one."""
    mine, theirs = _best_at_points(cells, x, y, metric), _best_at_points(other_cells, x, y, metric)
    difference = {
        point: (value - theirs[point][0], f"{key} vs {theirs[point][1]}")
        for point, (value, key) in mine.items()
        if point in theirs
    }
    if not difference:
        return empty(f"no ({x}, {y}) point in common with {other}")
    return _heatmap(difference, x, y, f"Δ {metric}", f"Best {metric}: this sweep minus {other}", 0)


def equity_curve(
    dates: Sequence[Any],
    equity: Sequence[float],
    buy_and_hold: Sequence[float] | None,
    label: str,
    title: str = "Equity curve",
) -> go.Figure:
    figure = go.Figure(go.Scatter(x=list(dates), y=list(equity), name=label, line={"color": "#2f6fde"}))
    if buy_and_hold is not None:
        figure.add_trace(
            go.Scatter(
                x=list(dates), y=list(buy_and_hold), name="buy and hold", line={"color": "#8a94a6", "dash": "dot"}
            )
        )
    figure.update_layout(yaxis_title="equity")
    return _styled(figure, title, height=360)


def walk_forward_folds(folds: Sequence[dict[str, Any]]) -> go.Figure:
    """Each fold on one row of a timeline: its training window, then its test window labelled with the parameters
    its training chose."""
    if not folds:
        return empty("no walk-forward folds", height=300)
    figure = go.Figure()
    for part, colour in (("train", "#2f6fde"), ("test", "#e0a100")):
        xs: list[Any] = []
        ys: list[Any] = []
        hover: list[str] = []
        for fold in folds:
            window, row = fold[part], f"fold {fold['fold']}"
            # One segment per fold, cut from the next by a gap (None), drawn thick as a bar.
            xs += [window["first"], window["last"], None]
            ys += [row, row, None]
            text = f"{row} {part}: {window['first']} → {window['last']} ({window['bars']} bars)"
            hover += [text, text, ""]
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=f"{part} window",
                line={"color": colour, "width": 14},
                hovertext=hover,
                hoverinfo="text",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[fold["test"]["last"] for fold in folds],
            y=[f"fold {fold['fold']}" for fold in folds],
            mode="text",
            text=[_key(fold["parameters"]) for fold in folds],
            textposition="middle right",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    # Room on the right for the last fold's parameters, which are written after its test window.
    first = min(date.fromisoformat(fold["train"]["first"]) for fold in folds)
    last = max(date.fromisoformat(fold["test"]["last"]) for fold in folds)
    figure.update_xaxes(range=[first, last + (last - first) * 0.18])
    figure.update_layout(yaxis={"autorange": "reversed", "title": None}, xaxis_title="date")
    return _styled(
        figure, "Walk-forward folds: training, then the chosen parameters tested", height=120 + 36 * len(folds)
    )


def in_vs_out_of_sample(best: Sequence[dict[str, Any]], metric: str) -> go.Figure:
    """Each best cell's in-sample value of the ranking metric beside its out-of-sample value."""
    labels, inside, outside, names = [], [], [], []
    for cell in best:
        oos = cell.get("out_of_sample")
        if not oos:
            continue
        labels.append(f"{cell['ticker']} #{cell['rank']}")
        names.append(f"{cell['strategy_type']} {_key(cell['parameters'])}")
        inside.append(cell["metrics"].get(metric))
        outside.append(oos.get(metric))
    if not labels:
        return empty("no out-of-sample test: the sweep asked for no split", height=300)
    hover = "%{x}: %{customdata}<br>" + metric + " %{y:.3f}<extra>%{fullData.name}</extra>"
    figure = go.Figure(
        [
            go.Bar(x=labels, y=inside, name="in sample", marker_color="#2f6fde", customdata=names, hovertemplate=hover),
            go.Bar(
                x=labels, y=outside, name="out of sample", marker_color="#e0a100", customdata=names, hovertemplate=hover
            ),
        ]
    )
    figure.update_layout(barmode="group", yaxis_title=metric)
    return _styled(figure, f"{metric}: in sample vs out of sample", height=340)


def _key(parameters: dict[str, Any]) -> str:
    return ",".join(f"{name}={value:g}" for name, value in sorted(parameters.items()))


def partition_lag(partitions: Sequence[dict[str, Any]]) -> go.Figure:
    if not partitions:
        return empty("no partitions")
    figure = go.Figure(
        go.Bar(x=[f"p{p['partition']}" for p in partitions], y=[p["lag"] for p in partitions], marker_color="#2f6fde")
    )
    figure.update_layout(yaxis_title="events behind")
    return _styled(figure, "Projector lag per partition", height=280)
